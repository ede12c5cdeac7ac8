# Writes the generated version.h from version.h.in with the current git commit; run at every
# build so /metrics and --version name the commit actually built (file rewritten only on change).
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE PE_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT PE_GIT_COMMIT)
  set(PE_GIT_COMMIT "unknown")
endif()
configure_file(${SOURCE_DIR}/cmake/version.h.in ${OUTPUT}.tmp @ONLY)
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
