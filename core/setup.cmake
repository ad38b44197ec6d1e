# aimx setup, aimx verify, aimx dkim-keygen (issue 9): their sources join
# the core library, so the unit tests in tests/setup link them too.
target_sources(aimx_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/cmd_setup.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_verify.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_keygen.c
  ${CMAKE_CURRENT_LIST_DIR}/setup.c
  ${CMAKE_CURRENT_LIST_DIR}/spf.c
  ${CMAKE_CURRENT_LIST_DIR}/lookup.c
  ${CMAKE_CURRENT_LIST_DIR}/localaddr.c
  ${CMAKE_CURRENT_LIST_DIR}/hostport.c)
