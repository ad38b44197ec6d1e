# SPDX-License-Identifier: MIT
#
# cmake -DIN=<file> -DOUT=<file.gz> -P gzip9n.cmake
# Compresses IN as Debian policy wants documentation compressed: gzip -9n
# (best compression, no file name, no time stamp, so the output depends on
# the content only).
find_program(_gzip gzip REQUIRED)
get_filename_component(_dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${_dir}")
execute_process(COMMAND "${_gzip}" -9nc
                INPUT_FILE "${IN}" OUTPUT_FILE "${OUT}.tmp"
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "gzip -9n ${IN} failed: ${_rc}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
