# Writes coprocd.service from coprocd.service.in for the prefix it is installed under, at install
# time: `cmake --install --prefix P` and cpack (which installs under /usr) each get a unit whose
# ExecStart is their own coprocd. Run from install(CODE) with CMAKE_INSTALL_PREFIX set by the
# install, and COPROC_UNIT_IN, COPROC_UNIT_OUT, COPROC_BINDIR, COPROC_DOCDIR (relative to it).
foreach(_dir BINDIR DOCDIR)
  if(IS_ABSOLUTE "${COPROC_${_dir}}")
    set(CMAKE_INSTALL_FULL_${_dir} "${COPROC_${_dir}}")
  else()
    set(CMAKE_INSTALL_FULL_${_dir} "${CMAKE_INSTALL_PREFIX}/${COPROC_${_dir}}")
  endif()
endforeach()
configure_file("${COPROC_UNIT_IN}" "${COPROC_UNIT_OUT}" @ONLY)
