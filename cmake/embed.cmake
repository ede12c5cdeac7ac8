# pe_embed(OUTPUT SYMBOL BASE_DIR [ASSETS [NO_FINGERPRINT regex]] FILES file...)
#
# Generates OUTPUT, a C file defining `SYMBOL[]` and `SYMBOL_count` with every file's path
# relative to BASE_DIR and its bytes (NUL-terminated for convenience; the terminator is not
# counted in .len). Regenerated whenever one of the files changes. One generator,
# cmake/embed_run.cmake, serves two shapes (both declared in include/pe/core.h):
#
#   plain   const pe_embedded_file_t SYMBOL[]   {path, data, len}  (the SQL migrations)
#   ASSETS  const pe_embedded_asset_t SYMBOL[]  {path, data, len, hash, gzip, gzip_len,
#                                                script_hash}      (the dashboard)
#
# ASSETS: each file gets a content hash (first 16 hex digits of its SHA-256: the ETag and the
# fingerprint) and a `gzip -9n` variant kept when it is at least 10% smaller. Before hashing,
# CSS url(…) and HTML href="…"/src="…" references to other embedded files are rewritten to
# fingerprinted URLs (`/app.css?v=<hash>`), and an HTML page that loads ES modules gets an
# import map from each file's plain URL to its fingerprinted one (its CSP hash is script_hash).
# Paths matching NO_FINGERPRINT are never referenced by fingerprint (the SDK, which merchants
# link by a fixed URL; licences). See embed_run.cmake for the exact rules.
find_program(PE_GZIP gzip REQUIRED)

function(pe_embed output symbol base_dir)
  cmake_parse_arguments(PARSE_ARGV 3 ARG "ASSETS" "NO_FINGERPRINT" "FILES")
  set(mode "")
  if(ARG_ASSETS)
    set(mode -DASSETS=ON -DNO_FINGERPRINT=${ARG_NO_FINGERPRINT} -DGZIP=${PE_GZIP})
  endif()
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} -DSYMBOL=${symbol} -DBASE_DIR=${base_dir}
            "-DFILES=${ARG_FILES}" ${mode} -P ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${ARG_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
    COMMENT "Embedding ${symbol}"
    VERBATIM)
endfunction()
