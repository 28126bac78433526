# The architecture, checked on every build: the layering read from the
# compiled objects and the #include lines (no use of a folder that is not
# below, no circle of calls between the files of a folder), and the message
# path of docs/ARCHITECTURE.md (every file:function it names exists), and
# the metrics of docs/OPERATING.md (every exported family has a row).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND)
  set(_layers)
  foreach(pair core=bftnet_core proto=bftnet_proto net_codec=bftnet_net_codec net=bftnet_net
               migration=bftnet_migration dispatcher=bftnet_dispatcher receiver=bftnet_receiver
               membership=bftnet_membership node=bftnet_static)
    string(REPLACE "=" ";" _kv ${pair})
    list(GET _kv 0 _folder)
    list(GET _kv 1 _target)
    list(APPEND _layers "${_folder}=$<TARGET_FILE:${_target}>")
  endforeach()
  add_test(NAME arch_layers COMMAND Python3::Interpreter
    ${CMAKE_CURRENT_SOURCE_DIR}/arch/check_layers.py --src ${CMAKE_SOURCE_DIR} ${_layers})
  add_test(NAME arch_doc_map COMMAND Python3::Interpreter
    ${CMAKE_CURRENT_SOURCE_DIR}/arch/check_doc_map.py ${CMAKE_SOURCE_DIR}
    ${CMAKE_SOURCE_DIR}/docs/ARCHITECTURE.md)
  add_test(NAME arch_doc_metrics COMMAND Python3::Interpreter
    ${CMAKE_CURRENT_SOURCE_DIR}/arch/check_doc_metrics.py ${CMAKE_SOURCE_DIR})
  set_tests_properties(arch_layers arch_doc_map arch_doc_metrics PROPERTIES LABELS unit)
else()
  message(WARNING "python3 not found: the architecture checks (tests/arch) are not registered")
endif()
