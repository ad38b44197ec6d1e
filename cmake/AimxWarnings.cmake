# Project-wide warning and sanitizer flags, applied through aimx_project_flags.
add_library(aimx_project_flags INTERFACE)
target_compile_options(aimx_project_flags INTERFACE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wformat=2 -Wundef -Wno-unused-parameter)
if(AIMX_WERROR)
  target_compile_options(aimx_project_flags INTERFACE -Werror)
endif()
target_compile_definitions(aimx_project_flags INTERFACE _GNU_SOURCE)

if(AIMX_SANITIZE)
  # gcc: clang 14's static sanitizer runtimes cannot link plugins built with
  # --no-undefined; with clang the shared runtime works.
  set(_san -fsanitize=address,undefined -fno-omit-frame-pointer
           -fno-sanitize-recover=undefined)
  if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    list(APPEND _san -shared-libsan)
  endif()
  add_compile_options(${_san})
  add_link_options(${_san})
endif()
