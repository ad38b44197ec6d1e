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
  add_compile_options(${_san})
  add_link_options(${_san})
  if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    add_link_options(-shared-libsan)
    # The shared runtime is not on the loader's default path.
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libclang_rt.asan-x86_64.so
                    OUTPUT_VARIABLE _asan_rt OUTPUT_STRIP_TRAILING_WHITESPACE)
    get_filename_component(_asan_dir "${_asan_rt}" DIRECTORY)
    add_link_options("LINKER:-rpath,${_asan_dir}")
  endif()
endif()
