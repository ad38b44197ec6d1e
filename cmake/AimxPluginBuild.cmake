# aimx_add_plugin(<name> SOURCES ... [LIBRARIES ...])
# Builds <name>.so as a module against the in-tree SDK, named and linked as
# the loader requires: no "lib" prefix, hidden visibility, every symbol
# resolved at link time and at load time.  Out-of-tree plugins get the same
# function from the installed AimxPlugin CMake package.
function(aimx_add_plugin name)
  cmake_parse_arguments(P "NO_INSTALL" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT name MATCHES "^[a-z0-9-]+$")
    message(FATAL_ERROR "aimx_add_plugin: '${name}' is not a valid plugin name ([a-z0-9-]+)")
  endif()
  add_library(${name} MODULE ${P_SOURCES})
  target_link_libraries(${name} PRIVATE aimx_sdk aimx_project_flags ${P_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "${name}"
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/plugins")
  target_link_options(${name} PRIVATE "LINKER:--no-undefined" "LINKER:-z,now")
  if(NOT P_NO_INSTALL)
    install(TARGETS ${name} LIBRARY DESTINATION "${AIMX_PLUGIN_INSTALL_DIR}"
            COMPONENT "plugin-${name}")
  endif()
endfunction()
