# SPDX-License-Identifier: MIT
#
# Packaging: the man pages, the example configuration, the Debian metadata
# of packaging/ and CPack's DEB generator, one package per install
# component (docs/packaging.md):
#
#   core                  -> aimx        the aimx command, aimx(1),
#                                        aimx.conf(5), the example config
#   plugin-<name>         -> aimx-plugin-<name>   one per bundled plugin built
#   dev                   -> aimx-dev    the SDK and aimx-plugin(7)
#
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr
#   cmake --build build && (cd build && cpack -G DEB)
#
# Included at the very end of the top-level CMakeLists.txt, so that every
# install() rule, and with it every component, already exists.

include_guard(GLOBAL)

set(_aimx_pkg_src "${PROJECT_SOURCE_DIR}/packaging")
set(_aimx_pkg_bin "${PROJECT_BINARY_DIR}/packaging")

option(AIMX_MAN_PAGES
  "Build and install the man pages aimx(1), aimx.conf(5) and aimx-plugin(7) (needs python3)"
  ON)
# Per-package copyright, changelog and lintian overrides: what a Debian
# package needs, and noise in a /usr/local install.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_aimx_debian_default ON)
else()
  set(_aimx_debian_default OFF)
endif()
option(AIMX_DEBIAN_METADATA
  "Install /usr/share/doc/<package>/{copyright,changelog.gz} and lintian overrides for each package (default: ON when CMAKE_INSTALL_PREFIX is /usr)"
  ${_aimx_debian_default})
set(AIMX_DEB_MAINTAINER "The aimx developers <aimx@example.org>" CACHE STRING
  "Maintainer field of the Debian packages")

# ---- paths the man pages name ----------------------------------------------
function(_aimx_abs out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
_aimx_abs(_aimx_abs_plugindir "${AIMX_PLUGIN_INSTALL_DIR}")
_aimx_abs(_aimx_abs_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
_aimx_abs(_aimx_abs_libdir "${CMAKE_INSTALL_LIBDIR}")
set(_aimx_docdir_rel "${CMAKE_INSTALL_DATAROOTDIR}/doc/aimx")
set(_aimx_devdocdir_rel "${CMAKE_INSTALL_DATAROOTDIR}/doc/aimx-dev")

# Every ABI minor this core accepts: 1.0 ... 1.N, one virtual package each.
set(AIMX_ABI_PROVIDES "")
foreach(_minor RANGE 0 ${AIMX_ABI_MINOR})
  list(APPEND AIMX_ABI_PROVIDES "aimx-abi-${AIMX_ABI_MAJOR}.${_minor}")
endforeach()
list(JOIN AIMX_ABI_PROVIDES ", " _aimx_abi_provides)

# The date of the pages: the latest changelog entry's.
file(STRINGS "${_aimx_pkg_src}/changelog" _aimx_head LIMIT_COUNT 1)
file(STRINGS "${_aimx_pkg_src}/changelog" _aimx_trailer REGEX "^ -- "
     LIMIT_COUNT 1)
if(NOT _aimx_head MATCHES "^aimx \\(([^)]+)\\)")
  message(FATAL_ERROR "packaging/changelog: cannot read the latest entry's version")
endif()
set(AIMX_CHANGELOG_VERSION "${CMAKE_MATCH_1}")
if(NOT _aimx_trailer MATCHES ", ([0-9]+) ([A-Z][a-z][a-z]) ([0-9][0-9][0-9][0-9]) ")
  message(FATAL_ERROR "packaging/changelog: cannot read the latest entry's date")
endif()
set(_day "${CMAKE_MATCH_1}")
set(_year "${CMAKE_MATCH_3}")
set(_aimx_months Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)
list(FIND _aimx_months "${CMAKE_MATCH_2}" _month)
math(EXPR _month "${_month} + 1")
string(LENGTH "${_day}" _len)
if(_len EQUAL 1)
  set(_day "0${_day}")
endif()
if(_month LESS 10)
  set(_month "0${_month}")
endif()
set(AIMX_RELEASE_DATE "${_year}-${_month}-${_day}")
if(NOT AIMX_CHANGELOG_VERSION STREQUAL PROJECT_VERSION)
  message(AUTHOR_WARNING
    "packaging/changelog's latest entry is ${AIMX_CHANGELOG_VERSION}, the "
    "project is ${PROJECT_VERSION}: add an entry (dch -v ${PROJECT_VERSION})")
endif()

# ---- man pages -------------------------------------------------------------
# Rendered at build time by packaging/man/render_man.py: aimx.conf(5)'s
# settings come from the table of docs/configuration.md.  Debian wants man
# pages compressed (gzip -9n), and man(1) reads them so anywhere.
if(AIMX_MAN_PAGES)
  find_package(Python3 COMPONENTS Interpreter)
  if(NOT Python3_Interpreter_FOUND)
    message(FATAL_ERROR
      "The man pages are rendered with python3, which was not found: "
      "install it, or configure with -DAIMX_MAN_PAGES=OFF")
  endif()
  set(_aimx_man_vars
    --set "VERSION=${PROJECT_VERSION}"
    --set "DATE=${AIMX_RELEASE_DATE}"
    --set "ABI=${AIMX_ABI_MAJOR}.${AIMX_ABI_MINOR}"
    --set "ABI_PROVIDES=${_aimx_abi_provides}"
    --set "SYSCONFDIR=${AIMX_SYSCONFDIR}"
    --set "PLUGINDIR=${_aimx_abs_plugindir}"
    --set "INCLUDEDIR=${_aimx_abs_includedir}"
    --set "PKGCONFIGDIR=${_aimx_abs_libdir}/pkgconfig"
    --set "CMAKEDIR=${_aimx_abs_libdir}/cmake/AimxPlugin"
    --set "DOCDIR=${CMAKE_INSTALL_PREFIX}/${_aimx_docdir_rel}"
    --set "DEVDOCDIR=${CMAKE_INSTALL_PREFIX}/${_aimx_devdocdir_rel}")
  set(AIMX_MAN_PAGES_BUILT "")
  foreach(_page aimx.1 aimx.conf.5 aimx-plugin.7)
    set(_in "${_aimx_pkg_src}/man/${_page}.in")
    set(_out "${_aimx_pkg_bin}/man/${_page}")
    set(_extra "")
    set(_deps "${_in}" "${_aimx_pkg_src}/man/render_man.py"
              "${_aimx_pkg_src}/changelog")
    if(_page STREQUAL "aimx.conf.5")
      set(_extra --config-md "${PROJECT_SOURCE_DIR}/docs/configuration.md")
      list(APPEND _deps "${PROJECT_SOURCE_DIR}/docs/configuration.md")
    endif()
    add_custom_command(
      OUTPUT "${_out}" "${_out}.gz"
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${_aimx_pkg_bin}/man"
      COMMAND Python3::Interpreter "${_aimx_pkg_src}/man/render_man.py"
              --template "${_in}" --output "${_out}" --gzip "${_out}.gz"
              ${_extra} ${_aimx_man_vars}
      DEPENDS ${_deps}
      COMMENT "Rendering the man page ${_page}"
      VERBATIM)
    list(APPEND AIMX_MAN_PAGES_BUILT "${_out}")
  endforeach()
  add_custom_target(aimx_man_pages ALL DEPENDS ${AIMX_MAN_PAGES_BUILT})

  install(FILES "${_aimx_pkg_bin}/man/aimx.1.gz"
          DESTINATION "${CMAKE_INSTALL_MANDIR}/man1" COMPONENT core)
  install(FILES "${_aimx_pkg_bin}/man/aimx.conf.5.gz"
          DESTINATION "${CMAKE_INSTALL_MANDIR}/man5" COMPONENT core)
  install(FILES "${_aimx_pkg_bin}/man/aimx-plugin.7.gz"
          DESTINATION "${CMAKE_INSTALL_MANDIR}/man7" COMPONENT dev)
endif()

# ---- the example configuration ---------------------------------------------
# Documentation, not a conffile: without /etc/aimx/aimx.conf aimx runs on
# its built-in defaults, and an installed file would override them with an
# example domain.
install(FILES "${_aimx_pkg_src}/aimx.conf"
        DESTINATION "${_aimx_docdir_rel}/examples" COMPONENT core)

# ---- stripping ---------------------------------------------------------------
# CPACK_STRIP_FILES (and cmake --install --strip) runs a plain `strip`,
# which leaves the .comment and .note sections; finish the job as dh_strip
# does.  Installed once per component (below), after everything else, for
# the files this install run wrote.
set(_aimx_strip_code "")
if(CMAKE_STRIP)
  set(_aimx_strip_code [[
if(CMAKE_INSTALL_DO_STRIP)
  foreach(_aimx_f IN LISTS CMAKE_INSTALL_MANIFEST_FILES)
    # The manifest names files without DESTDIR.
    set(_aimx_f "$ENV{DESTDIR}${_aimx_f}")
    if(EXISTS "${_aimx_f}" AND NOT IS_SYMLINK "${_aimx_f}"
       AND NOT IS_DIRECTORY "${_aimx_f}")
      file(READ "${_aimx_f}" _aimx_magic LIMIT 4 HEX)
      if(_aimx_magic STREQUAL "7f454c46")
        execute_process(COMMAND "@STRIP@" --remove-section=.comment
                                --remove-section=.note "${_aimx_f}"
                        RESULT_VARIABLE _aimx_rc)
        if(NOT _aimx_rc EQUAL 0)
          message(FATAL_ERROR "strip --remove-section=.comment ${_aimx_f}: ${_aimx_rc}")
        endif()
      endif()
    endif()
  endforeach()
endif()
]])
  string(REPLACE "@STRIP@" "${CMAKE_STRIP}" _aimx_strip_code "${_aimx_strip_code}")
endif()

# ---- components and packages -----------------------------------------------
get_cmake_property(_aimx_components COMPONENTS)
list(REMOVE_DUPLICATES _aimx_components)
if("Unspecified" IN_LIST _aimx_components)
  message(WARNING
    "Some install() rule has no COMPONENT: its files would land in a package "
    "named aimx-unspecified.  Give every install() rule a component (core, "
    "dev or plugin-<name>).")
endif()

# Package name, section and description of each component.
set(_aimx_desc_core
"direct-to-MX mail transport with run-time plugins
aimx delivers outbound mail directly to each recipient's MX host, the job
of an MTA's SMTP client, without a queue: every recipient ends delivered,
bounced or deferred when the command returns, with the reason.  It is
built for operators who give programs and AI agents their own mail
domain, and is strict about deliverability: outbound mail uses IPv4 only
unless IPv6 is enabled.

This package holds the aimx command (send and route mail, check the
configuration, the plugins, a domain's DNS records and outbound port 25),
its manual pages and an example configuration.  DNS resolution, the
address-family policy and the SMTP transport are plugins, shipped in the
aimx-plugin-* packages.")
set(_aimx_desc_dev
"plugin SDK for aimx
aimx delivers outbound mail directly to each recipient's MX host through
run-time plugins: a resolver, an address-family policy and a transport.

This package holds what is needed to write such plugins: the header
<aimx/plugin.h> (plugin ABI @ABI@), the in-memory fake host
<aimx/fake_host.h> for plugin unit tests, the pkg-config file
aimx-plugin.pc, the CMake package AimxPlugin, example plugins with a
guide to writing them, and the manual page aimx-plugin(7).")
set(_aimx_desc_plugin-resolver-cares
"c-ares DNS resolver plugin for aimx
aimx delivers outbound mail directly to each recipient's MX host through
run-time plugins.

This plugin looks up MX, A, AAAA, TXT and PTR records with c-ares and
tells NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeouts and unreachable
servers apart, so that aimx bounces what cannot be delivered and defers
what may work later.  Its servers, timeout and tries are set in the
resolver group of aimx.conf.")
set(_aimx_desc_plugin-policy-ipfamily
"address-family policy plugin for aimx
aimx delivers outbound mail directly to each recipient's MX host through
run-time plugins.

This plugin decides which addresses of each MX host aimx connects to:
IPv4 only by default, because receivers reject mail that arrives over
IPv6 when SPF lists only IPv4 addresses; with enable_ipv6 both families,
interleaved, the preferred one first.  An MX host without a usable
address is skipped with a reason.")
set(_aimx_desc_plugin-transport-smtp
"ESMTP transport plugin for aimx
aimx delivers outbound mail directly to each recipient's MX host through
run-time plugins.

This plugin speaks ESMTP to the MX hosts aimx chooses: STARTTLS over
OpenSSL (opportunistic, required, or with the certificate verified),
Happy Eyeballs connection racing, fixed source addresses, several
recipients per transaction, and a classified result for every attempt
and recipient.  Without it aimx can route mail but not send it.")

# The version of every package, and the exact one bundled plugins need.
set(_aimx_deb_version "${PROJECT_VERSION}")

set(_aimx_packaged "")
set(_aimx_plugin_packages "")
foreach(_comp IN LISTS _aimx_components)
  string(TOUPPER "${_comp}" _C)
  if(_comp STREQUAL "core")
    set(_pkg aimx)
    set(_section mail)
  elseif(_comp STREQUAL "dev")
    set(_pkg aimx-dev)
    set(_section libdevel)
  elseif(_comp MATCHES "^plugin-(.+)$")
    set(_pkg "aimx-plugin-${CMAKE_MATCH_1}")
    set(_section mail)
    list(APPEND _aimx_plugin_packages "${_pkg}")
    # The same build's core: nothing else has been tested with it.
    set(CPACK_DEBIAN_${_C}_PACKAGE_DEPENDS "aimx (= ${_aimx_deb_version})")
  else()
    set(_pkg "aimx-${_comp}")
    set(_section mail)
    message(WARNING "install component '${_comp}' is packaged as ${_pkg}, "
                    "without a description: see cmake/AimxPackaging.cmake")
  endif()
  if(DEFINED _aimx_desc_${_comp})
    string(REPLACE "@ABI@" "${AIMX_ABI_MAJOR}.${AIMX_ABI_MINOR}" _desc
                   "${_aimx_desc_${_comp}}")
  else()
    set(_desc "${_comp} part of aimx
aimx delivers outbound mail directly to each recipient's MX host through
run-time plugins.  This package holds its ${_comp} part.")
  endif()
  set(CPACK_DEBIAN_${_C}_PACKAGE_NAME "${_pkg}")
  set(CPACK_DEBIAN_${_C}_PACKAGE_SECTION "${_section}")
  set(CPACK_DEBIAN_${_C}_PACKAGE_PRIORITY optional)
  set(CPACK_DEBIAN_${_C}_DESCRIPTION "${_desc}")
  list(APPEND _aimx_packaged "${_comp}:${_pkg}")
  if(_aimx_strip_code)
    install(CODE "${_aimx_strip_code}" COMPONENT "${_comp}")
  endif()

  # Debian metadata in /usr/share/doc/<package>/ and lintian overrides.
  if(AIMX_DEBIAN_METADATA)
    set(_doc "${CMAKE_INSTALL_DATAROOTDIR}/doc/${_pkg}")
    install(FILES "${_aimx_pkg_src}/copyright"
            DESTINATION "${_doc}" COMPONENT "${_comp}")
    install(FILES "${_aimx_pkg_bin}/changelog.gz"
            DESTINATION "${_doc}" COMPONENT "${_comp}")
    if(EXISTS "${_aimx_pkg_src}/lintian/${_pkg}")
      install(FILES "${_aimx_pkg_src}/lintian/${_pkg}"
              DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides"
              COMPONENT "${_comp}")
    endif()
  endif()
endforeach()

if(AIMX_DEBIAN_METADATA)
  # A native package's changelog: /usr/share/doc/<package>/changelog.gz,
  # compressed as gzip -9n would (no name, no time stamp).
  add_custom_command(
    OUTPUT "${_aimx_pkg_bin}/changelog.gz"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${_aimx_pkg_bin}"
    COMMAND "${CMAKE_COMMAND}"
            "-DIN=${_aimx_pkg_src}/changelog"
            "-DOUT=${_aimx_pkg_bin}/changelog.gz"
            -P "${_aimx_pkg_src}/gzip9n.cmake"
    DEPENDS "${_aimx_pkg_src}/changelog" "${_aimx_pkg_src}/gzip9n.cmake"
    COMMENT "Compressing packaging/changelog"
    VERBATIM)
  add_custom_target(aimx_changelog ALL DEPENDS "${_aimx_pkg_bin}/changelog.gz")
endif()

# aimx recommends the bundled plugins this build packages (the default
# configuration names them), and provides one virtual package per plugin
# ABI minor it accepts, for third-party plugins to depend on.
set(CPACK_DEBIAN_CORE_PACKAGE_PROVIDES "${_aimx_abi_provides}")
list(JOIN _aimx_plugin_packages ", " _aimx_recommends)
set(CPACK_DEBIAN_CORE_PACKAGE_RECOMMENDS "${_aimx_recommends}")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "aimx, pkg-config | cmake")

# ---- CPack -----------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "aimx")
set(CPACK_PACKAGE_VENDOR "The aimx developers")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${AIMX_DEB_MAINTAINER}")
# Empty, not CMake's project description: CPackDeb would otherwise put it
# in front of every package's own description.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/deb")
set(CPACK_COMPONENTS_ALL ${_aimx_components})
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_VERSION "${_aimx_deb_version}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${AIMX_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Library dependencies from dpkg-shlibdeps, never a hand-written list.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
    WORLD_READ WORLD_EXECUTE)
# The packages install where this tree was configured to: the core has
# that prefix's plugin directory and configuration file compiled in.
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
# Debug symbols are dropped: CPack 3.25's -dbgsym packages
# (CPACK_DEBIAN_DEBUGINFO_PACKAGE) list absolute build paths in their
# md5sums and have no copyright file, which lintian rejects.
set(CPACK_STRIP_FILES ON)
# Checks and settings that must happen when cpack runs.
set(CPACK_PROJECT_CONFIG_FILE "${_aimx_pkg_bin}/CPackAimx.cmake")
set(AIMX_CPACK_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(AIMX_CPACK_DEBIAN_METADATA "${AIMX_DEBIAN_METADATA}")
set(AIMX_CPACK_CHANGELOG "${_aimx_pkg_src}/changelog")
configure_file("${_aimx_pkg_src}/CPackAimx.cmake.in"
               "${_aimx_pkg_bin}/CPackAimx.cmake" @ONLY)

include(CPack)

string(REPLACE ";" ", " _aimx_packaged_text "${_aimx_packaged}")
message(STATUS "Debian packages (cpack -G DEB): ${_aimx_packaged_text}")
