# Browser tests: node's test runner + playwright-core driving Debian's chromium (never a
# downloaded browser). Included by tests/CMakeLists.txt. `scripts/dev deps` installs what they
# need (chromium, nodejs, npm ci of package-lock.json).
find_program(PE_NODE node)
set(PE_CHROMIUM /usr/bin/chromium)
set(PE_PLAYWRIGHT ${CMAKE_SOURCE_DIR}/node_modules/playwright-core)

if(PE_NODE AND EXISTS ${PE_CHROMIUM} AND EXISTS ${PE_PLAYWRIGHT}/package.json)
  # One file at a time (--test-concurrency=1, whatever the cores): the dashboard's closed-loop
  # stores are measured by the simulation at their simulated times, and another file's server,
  # running every job at the real hour, must not judge them meanwhile.
  add_test(NAME browser
           COMMAND ${PE_NODE} --test --test-concurrency=1 ${CMAKE_SOURCE_DIR}/tests/browser/
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # RUN_SERIAL: the dashboard test measures largest contentful paint (≤ 1 s); on two cores it
  # must not share them with the sanitizer-built integration tests.
  set_tests_properties(browser PROPERTIES
                       LABELS browser TIMEOUT 900 RUN_SERIAL TRUE
                       ENVIRONMENT "PE_TEST_BINARY=$<TARGET_FILE:profit-engine>")
else()
  set(_pe_missing "")
  if(NOT PE_NODE)
    list(APPEND _pe_missing "node")
  endif()
  if(NOT EXISTS ${PE_CHROMIUM})
    list(APPEND _pe_missing "${PE_CHROMIUM}")
  endif()
  if(NOT EXISTS ${PE_PLAYWRIGHT}/package.json)
    list(APPEND _pe_missing "${PE_PLAYWRIGHT}")
  endif()
  string(REPLACE ";" ", " _pe_missing "${_pe_missing}")
  message(STATUS "browser tests unavailable (missing: ${_pe_missing}); run scripts/dev deps")
  # Under CI (CI set and not false/0) a missing browser toolchain is a failure, never a silent
  # skip. Elsewhere the test reports "skipped" (exit code 77) with the same hint. The check is
  # made at configure time: after `scripts/dev deps`, `scripts/dev build` reconfigures.
  set(_pe_msg "browser tests need node, ${PE_CHROMIUM} and ${PE_PLAYWRIGHT} (missing: ${_pe_missing}): run scripts/dev deps, then reconfigure (scripts/dev build)")
  add_test(NAME browser
           COMMAND sh -c "echo \"$1\" >&2; case \"$CI\" in ''|false|0) exit 77 ;; esac; exit 1"
                   browser-check "${_pe_msg}")
  set_tests_properties(browser PROPERTIES LABELS browser SKIP_RETURN_CODE 77)
endif()
