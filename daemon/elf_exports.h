// Reading a shared object's exported symbols without loading it (libelf), so the plugin loader can
// refuse a file that is not a decoder plugin before dlopen would run its constructors.
#pragma once

#include "kernels/result.h"

#include <string>
#include <string_view>

namespace specd::daemon {

// True when the ELF shared object at path defines `name` as a global or weak dynamic symbol, false
// when it does not. Errors: SPECD_E_IO when the file cannot be opened or read, SPECD_E_PLUGIN when it
// is not an ELF shared object of this machine's class or its dynamic symbol table is malformed.
Result<bool> elf_exports_symbol(const std::string& path, std::string_view name);

}  // namespace specd::daemon
