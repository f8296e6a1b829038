// ELF dynamic-symbol lookup with libelf (elfutils): the section table's SHT_DYNSYM section and its
// string table, every index bounds-checked by libelf. Nothing of the file is executed or mapped
// executable; a hostile file can at worst be refused.
#include "daemon/elf_exports.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

namespace specd::daemon {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

struct ElfHandle {
  Elf* e;
  ~ElfHandle() {
    if (e) elf_end(e);
  }
};

Error not_plugin(const std::string& path, const char* why) {
  return make_error(SPECD_E_PLUGIN, "%s is not a decoder plugin: %s", path.c_str(), why);
}

}  // namespace

Result<bool> elf_exports_symbol(const std::string& path, std::string_view name) {
  if (elf_version(EV_CURRENT) == EV_NONE) return make_error(SPECD_E_INTERNAL, "libelf: %s", elf_errmsg(-1));
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return make_error(SPECD_E_IO, "cannot open %s: %s", path.c_str(), std::strerror(errno));
  // ELF_C_READ (not _MMAP): libelf reads what it needs, so a file truncated meanwhile is an error, not SIGBUS.
  ElfHandle elf{elf_begin(f.fd, ELF_C_READ, nullptr)};
  if (!elf.e || elf_kind(elf.e) != ELF_K_ELF) return not_plugin(path, "not an ELF file");
  GElf_Ehdr eh;
  if (!gelf_getehdr(elf.e, &eh)) return not_plugin(path, "unreadable ELF header");
  if (eh.e_type != ET_DYN) return not_plugin(path, "not an ELF shared object");
  if (gelf_getclass(elf.e) != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32))
    return not_plugin(path, "an ELF file of another word size");
  for (Elf_Scn* scn = elf_nextscn(elf.e, nullptr); scn; scn = elf_nextscn(elf.e, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) return not_plugin(path, "unreadable section header");
    if (sh.sh_type != SHT_DYNSYM) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) return not_plugin(path, "unreadable dynamic symbol table");
    const size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) return not_plugin(path, "unreadable dynamic symbol");
      const int bind = GELF_ST_BIND(sym.st_info);
      if (sym.st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK)) continue;
      const char* s = elf_strptr(elf.e, sh.sh_link, sym.st_name);
      if (s && name == s) return true;
    }
  }
  return false;
}

}  // namespace specd::daemon
