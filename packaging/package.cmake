# Installation and the Debian package (`cpack -G DEB`), included by the
# top-level CMakeLists.txt. README "Installing from the .deb" and
# packaging/build-deb describe the release build; tests/e2e/package.sh
# checks the package's contents.
include(GNUInstallDirs)

set(WSMUX_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})

install(TARGETS wsmux wsmux-edge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The man pages carry the project's version.
foreach(page wsmux.1 wsmux-edge.8)
  configure_file(${WSMUX_PKG_DIR}/man/${page} ${CMAKE_BINARY_DIR}/man/${page}
                 @ONLY)
endforeach()
install(FILES ${CMAKE_BINARY_DIR}/man/wsmux.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_BINARY_DIR}/man/wsmux-edge.8
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# bash-completion loads completions/NAME for command NAME: one file
# completes both programs.
set(WSMUX_COMPLETIONS ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${WSMUX_PKG_DIR}/bash-completion/wsmux
        DESTINATION ${WSMUX_COMPLETIONS})
install(FILES ${WSMUX_PKG_DIR}/bash-completion/wsmux
        DESTINATION ${WSMUX_COMPLETIONS} RENAME wsmux-edge)

# systemd looks in /usr/lib/systemd/{system,user} (the package's prefix is
# /usr; GNUInstallDirs' LIBDIR would be the multiarch directory).
install(FILES ${WSMUX_PKG_DIR}/wsmux-edge.service
        DESTINATION lib/systemd/system)
install(FILES ${WSMUX_PKG_DIR}/wsmux-proxy@.service
        DESTINATION lib/systemd/user)

install(FILES ${WSMUX_PKG_DIR}/edge.example.json
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples RENAME edge.json)
# HAProxy in front of several edges (README "Running several edges behind
# HAProxy"); tests/e2e/fleet_haproxy.sh runs this very file.
install(FILES ${WSMUX_PKG_DIR}/haproxy/wsmux-edge.cfg
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        RENAME haproxy-wsmux-edge.cfg)

# ---- cpack -G DEB -------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wsmux)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "wsmux maintainers <wsmux@example.org>")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "SSH into cloud services over one multiplexed WebSocket")
# The summary above is the first line; CPack indents these and writes the
# empty line as " .".
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "wsmux carries every ssh, scp, sftp, rsync or editor connection as a
stream over one authenticated TLS WebSocket to the platform's edge, which
connects it to the service's sshd: no public SSH port is needed.

This package holds the client, wsmux, with a systemd user unit for a
long-running proxy, and the server, wsmux-edge, with a hardened systemd
unit and an example configuration.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The shared libraries the binaries link come from dpkg-shlibdeps; lws
# loads its libuv event library with dlopen(), which dpkg-shlibdeps cannot
# see.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libwebsockets-evlib-uv")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssh-client")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${WSMUX_PKG_DIR}/debian/postinst;${WSMUX_PKG_DIR}/debian/prerm;${WSMUX_PKG_DIR}/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
if(WSMUX_SANITIZE)
  # A test artefact (the binaries need the sanitizer runtimes), never to be
  # mistaken for a release.
  set(CPACK_DEBIAN_PACKAGE_VERSION "${PROJECT_VERSION}+sanitize")
endif()
include(CPack)
