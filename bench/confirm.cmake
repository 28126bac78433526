# confirm_cost: the reverse-path bytes and the CPU per message of one stream
# (window updates, Confirms), to compare two builds (docs/BENCHMARKS.md).
add_executable(confirm_cost ${CMAKE_CURRENT_SOURCE_DIR}/confirm_cost.c)
target_link_libraries(confirm_cost PRIVATE bftnet_static Threads::Threads)
