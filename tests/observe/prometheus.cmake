# coprocd's HTTP endpoint checked with the real Prometheus tools (Debian package `prometheus`):
# /metrics through `promtool check metrics`, a real Prometheus server scraping it and answering
# PromQL, and the health endpoints (draining included). Included from tests/observe/CMakeLists.txt.
add_executable(prometheus_test
  ${CMAKE_CURRENT_LIST_DIR}/prometheus_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/prometheus_support.cc)
target_link_libraries(prometheus_test PRIVATE coproc_test_support coproc coproc_base fmt::fmt GTest::gtest_main
                                              Threads::Threads)
add_dependencies(prometheus_test coprocd coproc_models)
# The Prometheus test waits for a first scrape, 5-7 s after its start (Prometheus applies a new
# target list at most every 5 s); the whole binary runs in under 10 s. The timeout leaves room
# for the test's own bounded waits (30 s each) to fail with their message first.
gtest_discover_tests(prometheus_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS observe TIMEOUT 120)
