# pe_embed(OUTPUT SYMBOL BASE_DIR FILES...)
# Generates OUTPUT, a C file defining `const pe_embedded_file_t SYMBOL[]` and `SYMBOL_count`
# with every file's path relative to BASE_DIR and its bytes (NUL-terminated for convenience;
# the terminator is not counted in .len). Regenerated whenever one of the files changes.
function(pe_embed output symbol base_dir)
  set(files ${ARGN})
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} -DSYMBOL=${symbol} -DBASE_DIR=${base_dir}
            "-DFILES=${files}" -P ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${files} ${CMAKE_SOURCE_DIR}/cmake/embed_run.cmake
    COMMENT "Embedding ${symbol}"
    VERBATIM)
endfunction()
