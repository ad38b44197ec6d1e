# SPDX-License-Identifier: MIT
#
# cmake -P check_symbols.cmake: compiles one plugin source to an object and
# checks its entry symbols as the loader will see them.  The loader finds a
# plugin with dlsym("aimx_plugin_v1") (or "<ident>_LTX_aimx_plugin_v1" when
# linked into the binary), so the names must be exactly these -- a C++
# mangled name compiles and links fine and is never found -- and must stay
# exported although plugins are built with -fvisibility=hidden.
#
#   -DCOMPILER=...  -DSOURCE=...  -DOBJECT=...  -DNM=...  [-DREADELF=...]
#   -DARGS=a|b|c        compiler arguments ('|' separated: ctest would split ';')
#   -DINCLUDES=d1|d2    include directories
#   -DDEFINED=s1|s2     symbols that must be defined, global, unmangled
#   -DABSENT=s1|s2      symbols that must not be defined at all

cmake_minimum_required(VERSION 3.25)

foreach(_var COMPILER SOURCE OBJECT NM DEFINED)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check_symbols.cmake: -D${_var}=... is required")
  endif()
endforeach()
string(REPLACE "|" ";" _args "${ARGS}")
string(REPLACE "|" ";" _includes "${INCLUDES}")
foreach(_dir IN LISTS _includes)
  list(APPEND _args "-I${_dir}")
endforeach()
string(REPLACE "|" ";" _defined "${DEFINED}")
string(REPLACE "|" ";" _absent "${ABSENT}")

execute_process(
  COMMAND "${COMPILER}" ${_args} -fvisibility=hidden -c "${SOURCE}" -o "${OBJECT}"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "compiling ${SOURCE} failed (${_rc})")
endif()

# -P: POSIX format, one "name type value size" line per symbol; no
# demangling, so a mangled name shows as the _Z... the dynamic linker sees.
execute_process(
  COMMAND "${NM}" -P --defined-only "${OBJECT}"
  OUTPUT_VARIABLE _nm RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "${NM} ${OBJECT} failed (${_rc})")
endif()
string(REPLACE "\n" ";" _lines "${_nm}")

set(_errors "")
set(_text_symbols "")
foreach(_line IN LISTS _lines)
  if(_line MATCHES "^([^ ]+) ([A-Za-z]) ")
    set(_name "${CMAKE_MATCH_1}")
    set(_type "${CMAKE_MATCH_2}")
    if(_type STREQUAL "T")
      list(APPEND _text_symbols "${_name}")
    endif()
    if(_name MATCHES "^_Z.*aimx_plugin_v1")
      string(APPEND _errors "  ${_name} is a C++ mangled entry symbol: AIMX_PLUGIN_DEFINE must give it C linkage\n")
    endif()
    foreach(_sym IN LISTS _absent)
      if(_name STREQUAL _sym)
        string(APPEND _errors "  ${_sym} is defined (type ${_type}) but must not be in this build mode\n")
      endif()
    endforeach()
  endif()
endforeach()
foreach(_sym IN LISTS _defined)
  if(NOT _sym IN_LIST _text_symbols)
    string(APPEND _errors "  ${_sym} is not defined as a global function with that exact (unmangled) name\n")
  endif()
endforeach()

if(READELF)
  execute_process(
    COMMAND "${READELF}" -sW "${OBJECT}"
    OUTPUT_VARIABLE _elf RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${READELF} -s ${OBJECT} failed (${_rc})")
  endif()
  string(REPLACE "\n" ";" _elf_lines "${_elf}")
  foreach(_sym IN LISTS _defined)
    foreach(_line IN LISTS _elf_lines)
      # Num: Value Size Type Bind Vis Ndx Name
      if(_line MATCHES " ([A-Z]+) +([A-Z]+) +[^ ]+ ${_sym}$")
        if(NOT CMAKE_MATCH_1 STREQUAL "GLOBAL" OR NOT CMAKE_MATCH_2 STREQUAL "DEFAULT")
          string(APPEND _errors "  ${_sym} is ${CMAKE_MATCH_1} ${CMAKE_MATCH_2}: under -fvisibility=hidden it must stay GLOBAL DEFAULT (AIMX_EXPORT)\n")
        endif()
      endif()
    endforeach()
  endforeach()
endif()

if(NOT _errors STREQUAL "")
  list(JOIN _args " " _cmd)
  list(JOIN _text_symbols " " _have)
  message(FATAL_ERROR "entry symbols of ${SOURCE} (${COMPILER} ${_cmd}):\n${_errors}defined text symbols: ${_have}")
endif()
list(JOIN _defined ", " _ok)
message(STATUS "${SOURCE}: ${_ok} defined with C linkage and exported")
