# membership/: the member table, the JSON membership file, Connect()'s diff.
bftnet_test(membership_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/membership_test.c LIBS bftnet_membership)
bftnet_test(membership_oom_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/membership_oom_test.c LIBS bftnet_membership PkgConfig::JANSSON -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free)
