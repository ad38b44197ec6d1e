# SPDX-License-Identifier: MIT
# cmake -DFUZZER=bin -DCORPUS=dir -DWORK=dir -DRUNS=n -P run_fuzzer.cmake
# Runs a libFuzzer binary for RUNS executions over a fresh copy of CORPUS,
# with crash artifacts kept in WORK; fails when the fuzzer fails.
foreach(_var FUZZER CORPUS WORK RUNS)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${_var}=... is missing")
  endif()
endforeach()
if(NOT EXISTS "${FUZZER}")
  message(FATAL_ERROR "${FUZZER} was not built")
endif()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/artifacts")
file(COPY "${CORPUS}/" DESTINATION "${WORK}/corpus")
execute_process(
  COMMAND "${FUZZER}" "-runs=${RUNS}" "-max_len=4096" "-timeout=10"
          "-rss_limit_mb=1024" "-print_final_stats=1"
          "-artifact_prefix=${WORK}/artifacts/" "${WORK}/corpus"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${_rc}); see ${WORK}/artifacts")
endif()
