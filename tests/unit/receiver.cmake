# receiver/: message buffers, the deframer, the inbound queue, the tentative buffer.
bftnet_test(receiver_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/receiver_test.c LIBS bftnet_receiver)
bftnet_test(receiver_inq_mt_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/receiver_inq_mt_test.c LIBS bftnet_receiver Threads::Threads LABELS threads TIMEOUT 120)
