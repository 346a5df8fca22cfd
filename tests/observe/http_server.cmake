# HttpServer (daemon/control/http/http_server.cc) over real TCP sockets on loopback: responses, limits,
# timeouts and malformed requests. Included from tests/observe/CMakeLists.txt.
add_executable(http_server_test ${CMAKE_CURRENT_SOURCE_DIR}/http_server_test.cc)
target_link_libraries(http_server_test PRIVATE coprocd_core PkgConfig::LIBUV GTest::gtest_main Threads::Threads)
gtest_discover_tests(http_server_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS observe
                     TIMEOUT 60)
