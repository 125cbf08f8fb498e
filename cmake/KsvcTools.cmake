# ksvc_add_tool(NAME <exe> SOURCES <files...> MANPAGE <file.1>)
# A command-line tool users install: ksvc's own code (warnings are errors), linked to ksvc::ksvc,
# installed into bin/ with its man page (gzip -9n, as Debian wants it) in the tools component.
include(GNUInstallDirs)
find_program(KSVC_GZIP gzip REQUIRED)

function(ksvc_add_tool)
  cmake_parse_arguments(T "" "NAME;MANPAGE" "SOURCES" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ksvc::ksvc)
  ksvc_own_code(${T_NAME})
  install(TARGETS ${T_NAME} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  get_filename_component(page "${T_MANPAGE}" NAME)
  set(gz ${PROJECT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${gz}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
                     COMMAND ${KSVC_GZIP} -9nc ${T_MANPAGE} > ${gz}
                     DEPENDS ${T_MANPAGE}
                     COMMENT "Compressing ${page}")
  add_custom_target(${T_NAME}_manpage ALL DEPENDS ${gz})
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tools)
endfunction()
