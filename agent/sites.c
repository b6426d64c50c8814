/* agent/sites.c - where the data-call uprobes of one library or binary go (sites.h). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <capstone/capstone.h>

#include "gopclntab.h"
#include "sites.h"

/* Instructions walked from a function's entry to its call: the known prologues are a
 * handful; a longer one is not the wrapper this looks for. */
#define SITES_MAX_INSNS 24
/* Functions without a size in the symbol table are read this far, within their section. */
#define SITES_DEFAULT_LEN 256

static const char *const func_names[SITE_N] = {
	[SITE_SSL_WRITE] = "SSL_write",
	[SITE_SSL_READ] = "SSL_read",
	[SITE_SSL_WRITE_EX] = "SSL_write_ex",
	[SITE_SSL_READ_EX] = "SSL_read_ex",
};

static const char *const mode_names[] = {
	[SITES_AUTO] = "auto",
	[SITES_EXPORTED] = "exported",
};

const char *sites_func_name(enum site_func f)
{
	return f < SITE_N ? func_names[f] : "?";
}

const char *sites_mode_name(enum sites_mode mode)
{
	return mode == SITES_EXPORTED ? mode_names[SITES_EXPORTED] : mode_names[SITES_AUTO];
}

int sites_mode_parse(const char *s, enum sites_mode *mode)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (s && !strcmp(s, mode_names[i])) {
			*mode = (enum sites_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void why(struct site *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void why(struct site *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
}

/* What x86 uprobes do with an instruction placed under a probe: the kernel emulates
 * push of a register (optionally REX.B), nop, and relative jmp/call/jcc; it single-steps
 * everything else out of line (arch/x86/kernel/uprobes.c). Returns "push", "nop",
 * "branch", or NULL for single-stepped. */
static const char *emulated_kind(const cs_insn *in)
{
	const uint8_t *b = in->bytes;

	if ((in->size == 1 && b[0] >= 0x50 && b[0] <= 0x57) ||
	    (in->size == 2 && b[0] == 0x41 && b[1] >= 0x50 && b[1] <= 0x57))
		return "push";
	if (in->id == X86_INS_NOP)
		return "nop";
	if ((in->size == 5 && (b[0] == 0xe8 || b[0] == 0xe9)) ||
	    (in->size == 2 && (b[0] == 0xeb || (b[0] >= 0x70 && b[0] <= 0x7f))) ||
	    (in->size == 6 && b[0] == 0x0f && b[1] >= 0x80 && b[1] <= 0x8f))
		return "branch";
	return NULL;
}

/* The 64-bit register a register id is part of (for the four argument registers
 * checked), or X86_REG_INVALID. */
static x86_reg arg_reg(uint16_t r)
{
	switch (r) {
	case X86_REG_RDI:
	case X86_REG_EDI:
	case X86_REG_DI:
	case X86_REG_DIL:
		return X86_REG_RDI;
	case X86_REG_RSI:
	case X86_REG_ESI:
	case X86_REG_SI:
	case X86_REG_SIL:
		return X86_REG_RSI;
	case X86_REG_RDX:
	case X86_REG_EDX:
	case X86_REG_DX:
	case X86_REG_DL:
	case X86_REG_DH:
		return X86_REG_RDX;
	case X86_REG_RCX:
	case X86_REG_ECX:
	case X86_REG_CX:
	case X86_REG_CL:
	case X86_REG_CH:
		return X86_REG_RCX;
	default:
		return X86_REG_INVALID;
	}
}

static bool is_reg(const cs_x86_op *op, x86_reg r)
{
	return op->type == X86_OP_REG && op->reg == r;
}

/* rdx = the caller's num, widened: movslq %edx,%rdx or mov %edx,%edx. */
static bool widens_num(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	if (x->op_count != 2)
		return false;
	if (in->id == X86_INS_MOVSXD)
		return is_reg(&x->operands[0], X86_REG_RDX) && is_reg(&x->operands[1], X86_REG_EDX);
	if (in->id == X86_INS_MOV)
		return is_reg(&x->operands[0], X86_REG_EDX) && is_reg(&x->operands[1], X86_REG_EDX);
	return false;
}

/* rcx = a slot of the function's own frame: mov %rsp,%rcx or lea disp(%rsp),%rcx. */
static bool frame_slot(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	if (x->op_count != 2 || !is_reg(&x->operands[0], X86_REG_RCX))
		return false;
	if (in->id == X86_INS_MOV)
		return is_reg(&x->operands[1], X86_REG_RSP);
	if (in->id == X86_INS_LEA)
		return x->operands[1].type == X86_OP_MEM &&
		       x->operands[1].mem.base == X86_REG_RSP &&
		       x->operands[1].mem.index == X86_REG_INVALID &&
		       x->operands[1].mem.segment == X86_REG_INVALID;
	return false;
}

static bool in_range(uint64_t a, uint64_t start, uint64_t len)
{
	return a >= start && a - start < len;
}

static bool is_call_rel(const cs_insn *in)
{
	return in->size == 5 && in->bytes[0] == 0xe8;
}

static bool is_jmp_rel(const cs_insn *in)
{
	return (in->size == 5 && in->bytes[0] == 0xe9) || (in->size == 2 && in->bytes[0] == 0xeb);
}

/* Branch target of a relative call/jmp (Capstone resolves it to an immediate). */
static uint64_t rel_target(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	return x->op_count == 1 && x->operands[0].type == X86_OP_IMM ? (uint64_t)x->operands[0].imm
								     : 0;
}

/* The entry path up to the first call: every instruction must leave rdi and rsi alone,
 * rdx alone or widened, rcx alone (ex) or pointed at the frame (plain). Returns the
 * call, or NULL with s->why set. */
static const cs_insn *entry_call(csh cs, cs_insn *const *insns, size_t n, bool ex, struct site *s)
{
	bool rcx_set = false;

	for (size_t i = 0; i < n && i < SITES_MAX_INSNS; i++) {
		const cs_insn *in = insns[i];
		cs_regs rd, wr;
		uint8_t n_rd = 0, n_wr = 0;

		if (is_call_rel(in)) {
			if (!ex && !rcx_set) {
				why(s, "4th argument of the call at +0x%" PRIx64 " not set",
				    in->address - insns[0]->address);
				return NULL;
			}
			return in;
		}
		if (in->id == X86_INS_CALL || in->id == X86_INS_RET || in->id == X86_INS_JMP ||
		    in->id == X86_INS_LJMP || in->id == X86_INS_LCALL) {
			why(s, "%s %s at +0x%" PRIx64 " before any direct call", in->mnemonic,
			    in->op_str, in->address - insns[0]->address);
			return NULL;
		}
		if (cs_regs_access(cs, in, rd, &n_rd, wr, &n_wr)) {
			why(s, "cannot tell the registers %s %s writes", in->mnemonic, in->op_str);
			return NULL;
		}
		for (uint8_t k = 0; k < n_wr; k++) {
			x86_reg r = arg_reg(wr[k]);
			bool ok = r == X86_REG_INVALID || (r == X86_REG_RDX && widens_num(in)) ||
				  (r == X86_REG_RCX && !ex && frame_slot(in));

			if (!ok) {
				why(s, "%s %s at +0x%" PRIx64 " changes an argument register",
				    in->mnemonic, in->op_str, in->address - insns[0]->address);
				return NULL;
			}
			if (r == X86_REG_RCX)
				rcx_set = true;
		}
	}
	why(s, "no direct call in the first %d instructions", SITES_MAX_INSNS);
	return NULL;
}

int sites_follow(const struct sites_code *sec, uint64_t fn_addr, size_t fn_len, bool ex,
		 struct site *s)
{
	cs_insn *insns[SITES_MAX_INSNS * 8] = { 0 }, *callee = NULL;
	size_t n = 0, off, left;
	const uint8_t *code;
	const cs_insn *call;
	uint64_t addr, target = 0;
	const char *kind;
	int n_targets = 0;
	csh cs = 0;
	int err = 0;

	s->internal = false;
	if (!in_range(fn_addr, sec->addr, sec->len)) {
		why(s, "symbol outside its section");
		return 0;
	}
	off = fn_addr - sec->addr;
	if (!fn_len || fn_len > sec->len - off)
		fn_len = sec->len - off < SITES_DEFAULT_LEN ? sec->len - off : SITES_DEFAULT_LEN;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);

	/* Decode the whole function body: every direct call leaving it is a candidate. */
	code = sec->bytes + off;
	left = fn_len;
	addr = fn_addr;
	while (left && n < sizeof(insns) / sizeof(insns[0])) {
		insns[n] = cs_malloc(cs);
		if (!insns[n]) {
			err = -ENOMEM;
			goto cleanup;
		}
		if (!cs_disasm_iter(cs, &code, &left, &addr, insns[n])) {
			cs_free(insns[n], 1);
			insns[n] = NULL;
			break;
		}
		n++;
	}
	if (!n) {
		why(s, "cannot decode the first instruction");
		goto cleanup;
	}
	kind = emulated_kind(insns[0]);
	if (kind) {
		why(s, "%s %s, emulated already", insns[0]->mnemonic, insns[0]->op_str);
		goto cleanup;
	}
	if (left && n < sizeof(insns) / sizeof(insns[0])) {
		why(s, "%s %s single-stepped; undecodable bytes at +0x%" PRIx64, insns[0]->mnemonic,
		    insns[0]->op_str, addr - fn_addr);
		goto cleanup;
	}
	if (left) {
		why(s, "%s %s single-stepped; function too long to follow", insns[0]->mnemonic,
		    insns[0]->op_str);
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t t;

		if (!is_call_rel(insns[i]) && !is_jmp_rel(insns[i]))
			continue;
		t = rel_target(insns[i]);
		if (in_range(t, fn_addr, fn_len))
			continue; /* a branch inside the function */
		if (!in_range(t, sec->addr, sec->len))
			continue; /* through the PLT: an imported function, not ours */
		if (is_jmp_rel(insns[i])) {
			why(s, "%s %s single-stepped; tail jump at +0x%" PRIx64, insns[0]->mnemonic,
			    insns[0]->op_str, insns[i]->address - fn_addr);
			goto cleanup;
		}
		if (n_targets && t == target)
			continue;
		target = t;
		n_targets++;
	}
	if (n_targets != 1) {
		why(s, "%s %s single-stepped; %s", insns[0]->mnemonic, insns[0]->op_str,
		    n_targets ? "more than one candidate callee" : "no call into its section");
		goto cleanup;
	}
	call = entry_call(cs, insns, n, ex, s);
	if (!call)
		goto cleanup;
	if (rel_target(call) != target) {
		why(s, "%s %s single-stepped; the entry path's call is not the candidate",
		    insns[0]->mnemonic, insns[0]->op_str);
		goto cleanup;
	}
	/* The callee's first instruction decides whether moving the probe pays. */
	code = sec->bytes + (target - sec->addr);
	left = sec->len - (target - sec->addr);
	addr = target;
	callee = cs_malloc(cs);
	if (!callee) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (!cs_disasm_iter(cs, &code, &left, &addr, callee)) {
		why(s, "%s %s single-stepped; callee @0x%" PRIx64 " cannot be decoded",
		    insns[0]->mnemonic, insns[0]->op_str, target);
		goto cleanup;
	}
	kind = emulated_kind(callee);
	if (!kind || !strcmp(kind, "branch")) {
		why(s, "%s %s single-stepped; callee @0x%" PRIx64 " begins with %s %s",
		    insns[0]->mnemonic, insns[0]->op_str, target, callee->mnemonic, callee->op_str);
		goto cleanup;
	}
	s->internal = true;
	s->addr = target;
	why(s, "%s %s, emulated; the symbol's %s %s is single-stepped", callee->mnemonic,
	    callee->op_str, insns[0]->mnemonic, insns[0]->op_str);
cleanup:
	if (callee)
		cs_free(callee, 1);
	for (size_t i = 0; i < n; i++)
		cs_free(insns[i], 1);
	cs_close(&cs);
	return err;
}

/* --- the ELF side ------------------------------------------------------------------- */

struct sym {
	uint64_t addr, size;
	size_t shndx;
};

/* The sizes of the files opened here (elf_read()). elf_rawfile() would tell them, but in
 * read(2) mode it reads the whole file to do so: every new executable, twice, in
 * discovery (a quarter of the agent's CPU while processes start). Images from
 * elf_memory() are not listed: their elf_rawfile() costs nothing. */
static __thread struct {
	Elf *e;
	size_t size;
} opened[4];

/* libelf over fd in read(2) mode, not mmap: a private executable mapping of a probed file
 * shows the breakpoints the kernel put there (int3), not the code. */
static Elf *elf_read(int fd)
{
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	struct stat st;

	if (!e || fstat(fd, &st))
		return e;
	for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++)
		if (!opened[i].e) {
			opened[i].e = e;
			opened[i].size = (size_t)st.st_size;
			break;
		}
	return e;
}

/* elf_end(), forgetting e's size. */
static void elf_done(Elf *e)
{
	for (size_t i = 0; e && i < sizeof(opened) / sizeof(opened[0]); i++)
		if (opened[i].e == e)
			opened[i].e = NULL;
	elf_end(e);
}

/* The size of e's file (or image); false when libelf cannot tell. */
static bool elf_size(Elf *e, size_t *size)
{
	for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++)
		if (opened[i].e == e) {
			*size = opened[i].size;
			return true;
		}
	return elf_rawfile(e, size) != NULL;
}

/* A section's bytes, only when the file holds all of them (a cut file is bad input). */
static Elf_Data *sec_data(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh)
{
	size_t size = 0;

	if (!elf_size(e, &size) || sh->sh_offset > size || sh->sh_size > size - sh->sh_offset)
		return NULL;
	return elf_getdata(scn, NULL);
}

/* The defined function symbol called name, from .symtab or else .dynsym. */
static bool find_sym(Elf *e, const char *name, struct sym *out)
{
	Elf_Type types[] = { SHT_SYMTAB, SHT_DYNSYM };

	for (size_t t = 0; t < 2; t++) {
		for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
			GElf_Shdr sh;
			Elf_Data *d;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != (GElf_Word)types[t] ||
			    !sh.sh_entsize)
				continue;
			d = sec_data(e, scn, &sh);
			if (!d)
				continue;
			for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
				GElf_Sym sym;
				const char *nm;

				if (!gelf_getsym(d, (int)i, &sym) ||
				    GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
				    sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE)
					continue;
				nm = elf_strptr(e, sh.sh_link, sym.st_name);
				if (!nm || strcmp(nm, name))
					continue;
				out->addr = sym.st_value;
				out->size = sym.st_size;
				out->shndx = sym.st_shndx;
				return true;
			}
		}
	}
	return false;
}

/* The name of a function symbol at exactly addr, or "". */
static void sym_name_at(Elf *e, uint64_t addr, char *buf, size_t len)
{
	buf[0] = '\0';
	for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) ||
		    (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || !sh.sh_entsize)
			continue;
		d = sec_data(e, scn, &sh);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *nm;

			if (!gelf_getsym(d, (int)i, &sym) ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value != addr ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			nm = elf_strptr(e, sh.sh_link, sym.st_name);
			if (nm && *nm) {
				snprintf(buf, len, "%s", nm);
				return;
			}
		}
	}
}

static void exported_why(struct sites *out, const char *reason)
{
	for (int f = 0; f < SITE_N; f++) {
		if (!out->f[f].present)
			continue;
		out->f[f].internal = false;
		snprintf(out->f[f].why, sizeof(out->f[f].why), "%s", reason);
	}
}

/* One internal site per direction or none: the plain and the _ex variant must both be
 * present and proven to call the same function (the _ex one passing its own 4 arguments
 * through proves the callee's shape), else both stay at their symbols, so no call is
 * ever seen at two sites. */
static void pair_up(struct sites *out, enum site_func plain, enum site_func ex)
{
	struct site *p = &out->f[plain], *x = &out->f[ex];
	const char *reason = NULL;

	if (!p->internal && !x->internal)
		return;
	if (!p->present || !x->present)
		reason = "no _ex variant to prove the callee's arguments";
	else if (!p->internal || !x->internal)
		reason = "its sibling stays at its symbol";
	else if (p->addr != x->addr)
		reason = "plain and _ex variants call different functions";
	if (!reason)
		return;
	for (struct site *s = p; s; s = s == p ? x : NULL) {
		if (!s->internal)
			continue;
		s->internal = false;
		snprintf(s->why, sizeof(s->why), "callee @0x%" PRIx64 " refused: %s", s->addr,
			 reason);
	}
}

static int choose(Elf *e, enum sites_mode mode, struct sites *out, char *err, size_t errlen)
{
	size_t shstrndx, size = 0;
	GElf_Ehdr eh;

	if (elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh)) {
		snprintf(err, errlen, "not an ELF object (%s)", elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (!elf_size(e, &size) || eh.e_shoff > size ||
	    (uint64_t)eh.e_shnum * eh.e_shentsize > size - eh.e_shoff) {
		snprintf(err, errlen, "truncated ELF: section headers end past its %zu bytes",
			 size);
		return -ENOEXEC;
	}
	if (elf_getshdrstrndx(e, &shstrndx)) {
		snprintf(err, errlen, "no section headers (%s)", elf_errmsg(-1));
		return -ENOEXEC;
	}
	for (int f = 0; f < SITE_N; f++) {
		struct site *s = &out->f[f];
		struct sites_code sec;
		struct sym sym;
		Elf_Scn *scn;
		GElf_Shdr sh;
		Elf_Data *d;

		if (!find_sym(e, func_names[f], &sym)) {
			snprintf(s->why, sizeof(s->why), "no symbol");
			continue;
		}
		s->present = true;
		s->sym_addr = sym.addr;
		if (mode == SITES_EXPORTED) {
			snprintf(s->why, sizeof(s->why), "exported sites forced");
			continue;
		}
		if (eh.e_machine != EM_X86_64) {
			snprintf(s->why, sizeof(s->why), "not x86-64 code");
			continue;
		}
		scn = elf_getscn(e, sym.shndx);
		if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR)) {
			snprintf(s->why, sizeof(s->why), "symbol not in an executable section");
			continue;
		}
		d = sec_data(e, scn, &sh);
		if (!d || !d->d_buf || d->d_size != sh.sh_size) {
			snprintf(s->why, sizeof(s->why), "cannot read its section (%s)",
				 elf_errmsg(-1));
			continue;
		}
		sec.bytes = d->d_buf;
		sec.len = d->d_size;
		sec.addr = sh.sh_addr;
		if (sites_follow(&sec, sym.addr, sym.size, f >= SITE_SSL_WRITE_EX, s)) {
			snprintf(s->why, sizeof(s->why), "cannot run the decoder");
			continue;
		}
		if (s->internal) {
			s->offset = s->addr - sh.sh_addr + sh.sh_offset;
			sym_name_at(e, s->addr, s->callee, sizeof(s->callee));
		}
	}
	pair_up(out, SITE_SSL_READ, SITE_SSL_READ_EX);
	pair_up(out, SITE_SSL_WRITE, SITE_SSL_WRITE_EX);
	return 0;
}

int sites_choose_mem(const void *image, size_t size, enum sites_mode mode, struct sites *out,
		     char *err, size_t errlen)
{
	Elf *e;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(err, errlen, "ok");
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf too old");
		return -ENOSYS;
	}
	e = elf_memory((char *)image, size);
	if (!e) {
		snprintf(err, errlen, "cannot read ELF (%s)", elf_errmsg(-1));
		return -ENOEXEC;
	}
	rc = choose(e, mode, out, err, errlen);
	elf_done(e);
	if (rc)
		exported_why(out, err);
	return rc;
}

int sites_choose(const char *path, enum sites_mode mode, struct sites *out, char *err,
		 size_t errlen)
{
	Elf *e = NULL;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	snprintf(err, errlen, "ok");
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf too old");
		return -ENOSYS;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s", strerror(-rc));
		return rc;
	}
	e = elf_read(fd);
	if (!e) {
		snprintf(err, errlen, "cannot read ELF (%s)", elf_errmsg(-1));
		rc = -ENOEXEC;
		goto cleanup;
	}
	rc = choose(e, mode, out, err, errlen);
cleanup:
	elf_done(e);
	close(fd);
	if (rc)
		exported_why(out, err);
	return rc;
}

/* --- other stacks: symbol presence, GnuTLS --------------------------------------------- */

/* Opens path for libelf (elf_read(): probed pages show int3). */
static Elf *elf_open(const char *path, int *fd, char *err, size_t errlen)
{
	Elf *e;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf too old");
		errno = ENOSYS;
		return NULL;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		int saved = errno;

		snprintf(err, errlen, "%s", strerror(saved));
		errno = saved;
		return NULL;
	}
	e = elf_read(*fd);
	if (!e || elf_kind(e) != ELF_K_ELF) {
		snprintf(err, errlen, "not an ELF object (%s)", elf_errmsg(-1));
		elf_done(e);
		close(*fd);
		*fd = -1;
		errno = ENOEXEC;
		return NULL;
	}
	return e;
}

int sites_find_funcs(const char *path, const char *const *names, size_t n, bool *found, char *err,
		     size_t errlen)
{
	struct sym sym;
	int fd = -1;
	Elf *e;

	for (size_t i = 0; i < n; i++)
		found[i] = false;
	e = elf_open(path, &fd, err, errlen);
	if (!e)
		return -errno;
	for (size_t i = 0; i < n; i++)
		found[i] = find_sym(e, names[i], &sym);
	elf_done(e);
	close(fd);
	return 0;
}

/* The code of the section holding sym, and sym's file offset. */
static int sym_code(Elf *e, const struct sym *sym, struct sites_code *sec, uint64_t *offset)
{
	Elf_Scn *scn = elf_getscn(e, sym->shndx);
	GElf_Shdr sh;
	Elf_Data *d;

	if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
	    !(sh.sh_flags & SHF_EXECINSTR))
		return -ENOEXEC;
	d = sec_data(e, scn, &sh);
	if (!d || !d->d_buf || d->d_size != sh.sh_size ||
	    !in_range(sym->addr, sh.sh_addr, sh.sh_size))
		return -ENOEXEC;
	sec->bytes = d->d_buf;
	sec->len = d->d_size;
	sec->addr = sh.sh_addr;
	if (offset)
		*offset = sym->addr - sh.sh_addr + sh.sh_offset;
	return 0;
}

/* Decodes up to max instructions from addr (bounded by len and the section) into a
 * Capstone array the caller frees with cs_free(). Returns the count (0: nothing). */
static size_t decode(csh cs, const struct sites_code *sec, uint64_t addr, size_t len, cs_insn **out)
{
	uint64_t off = addr - sec->addr;

	if (!in_range(addr, sec->addr, sec->len))
		return 0;
	if (!len || len > sec->len - off)
		len = sec->len - off < SITES_DEFAULT_LEN ? sec->len - off : SITES_DEFAULT_LEN;
	return cs_disasm(cs, sec->bytes + off, len, addr, 0, out);
}

int sites_tail_target(const struct sites_code *sec, uint64_t fn_addr, size_t fn_len,
		      uint64_t *target)
{
	cs_insn *in = NULL;
	size_t n, len;
	int found = 0;
	csh cs;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = decode(cs, sec, fn_addr, fn_len, &in);
	len = fn_len ? fn_len : SITES_DEFAULT_LEN;
	for (size_t i = 0; i < n; i++) {
		uint64_t t;

		if (!is_jmp_rel(&in[i]))
			continue;
		t = rel_target(&in[i]);
		if (in_range(t, fn_addr, len) || !in_range(t, sec->addr, sec->len))
			continue;
		if (found && t == *target)
			continue;
		*target = t;
		found++;
	}
	if (in)
		cs_free(in, n);
	cs_close(&cs);
	return found == 1 ? 0 : -ENOENT;
}

int sites_getter_disp(const struct sites_code *sec, uint64_t fn_addr, uint32_t *disp)
{
	cs_insn *in = NULL;
	int err = -ENOENT;
	size_t n;
	csh cs;

	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = decode(cs, sec, fn_addr, 16, &in);
	if (n >= 2 && in[0].id == X86_INS_MOV && in[1].id == X86_INS_RET) {
		const cs_x86 *x = &in[0].detail->x86;
		const cs_x86_op *src = &x->operands[1];

		if (x->op_count == 2 && is_reg(&x->operands[0], X86_REG_EAX) &&
		    src->type == X86_OP_MEM && src->mem.base == X86_REG_RDI &&
		    src->mem.index == X86_REG_INVALID && src->mem.segment == X86_REG_INVALID &&
		    src->mem.disp >= 0 && src->mem.disp < 1 << 20) {
			*disp = (uint32_t)src->mem.disp;
			err = 0;
		}
	}
	if (in)
		cs_free(in, n);
	cs_close(&cs);
	return err;
}

/* The first instruction at addr, named in buf; true when x86 uprobes emulate it. */
static bool first_insn(const struct sites_code *sec, uint64_t addr, char *buf, size_t len)
{
	const char *kind = NULL;
	cs_insn *in = NULL;
	size_t n;
	csh cs;

	snprintf(buf, len, "undecodable");
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return false;
	n = decode(cs, sec, addr, 16, &in);
	if (n) {
		kind = emulated_kind(&in[0]);
		snprintf(buf, len, "%.15s %.46s", in[0].mnemonic, in[0].op_str);
		cs_free(in, n);
	}
	cs_close(&cs);
	return kind != NULL;
}

int sites_gnutls(const char *path, struct sites_gnutls *out, char *err, size_t errlen)
{
	static const char *const recv_names[] = { "gnutls_record_recv", "gnutls_record_recv_seq" };
	struct sym send, recv, get;
	struct sites_code sec;
	char insn[64];
	int fd = -1, rc = -ENOENT;
	bool emu;
	Elf *e;

	memset(out, 0, sizeof(*out));
	e = elf_open(path, &fd, err, errlen);
	if (!e)
		return -errno;
	if (!find_sym(e, "gnutls_record_send2", &send) ||
	    sym_code(e, &send, &sec, &out->send_offset)) {
		snprintf(err, errlen, "no gnutls_record_send2 with code");
		goto cleanup;
	}
	emu = first_insn(&sec, send.addr, insn, sizeof(insn));
	snprintf(out->send_why, sizeof(out->send_why), "%s, %s", insn,
		 emu ? "emulated" : "single-stepped");
	/* Both receive entry points must lead to the same internal function: that proves
	 * it is the one record receiver they share, not a helper of one of them. */
	for (size_t i = 0; i < 2; i++) {
		uint64_t t = 0;

		if (!find_sym(e, recv_names[i], &recv) || sym_code(e, &recv, &sec, NULL)) {
			snprintf(err, errlen, "no %s with code", recv_names[i]);
			goto cleanup;
		}
		rc = sites_tail_target(&sec, recv.addr, recv.size, &t);
		if (rc == -ENOMEM)
			goto cleanup;
		if (rc || (i && t != out->recv_addr)) {
			snprintf(err, errlen, "%s does not tail-jump to %s receiver", recv_names[i],
				 i ? "the same" : "one");
			rc = -ENOENT;
			goto cleanup;
		}
		out->recv_addr = t;
	}
	{
		struct sym r = { .addr = out->recv_addr, .shndx = recv.shndx };

		if (sym_code(e, &r, &sec, &out->recv_offset)) {
			snprintf(err, errlen, "receiver @0x%" PRIx64 " outside its section",
				 out->recv_addr);
			rc = -ENOENT;
			goto cleanup;
		}
	}
	emu = first_insn(&sec, out->recv_addr, insn, sizeof(insn));
	snprintf(out->recv_why, sizeof(out->recv_why),
		 "gnutls_record_recv and _recv_seq tail-jump to @0x%" PRIx64 " (%s, %s)",
		 out->recv_addr, insn, emu ? "emulated" : "single-stepped");
	if (find_sym(e, "gnutls_transport_get_int", &get) && !sym_code(e, &get, &sec, NULL) &&
	    !sites_getter_disp(&sec, get.addr, &out->fd_disp))
		out->fd_known = true;
	rc = 0;
cleanup:
	elf_done(e);
	close(fd);
	return rc;
}

/* --- Go crypto/tls ------------------------------------------------------------------- */

static const char *const go_funcs[SITES_GO_N] = {
	[SITES_GO_WRITE] = "crypto/tls.(*Conn).Write",
	[SITES_GO_READ] = "crypto/tls.(*Conn).Read",
};

static bool is_jbe(const cs_insn *in)
{
	return (in->size == 2 && in->bytes[0] == 0x76) ||
	       (in->size == 6 && in->bytes[0] == 0x0f && in->bytes[1] == 0x86);
}

/* The stack check (cmp 0x10(%r14),%rsp or lea/cmp, then jbe to morestack) leaves the
 * argument registers alone; the cheapest site is the push after it (emulated, reached
 * once per call: Go 1.21+), else the jbe itself (emulated; reached twice when the stack
 * grows), else the entry. */
static int go_func(csh cs, const struct sites_code *sec, const struct sym *sym, uint64_t sec_offset,
		   struct sites_go_func_site *f)
{
	cs_insn *in = NULL;
	size_t n, site = 0;
	uint64_t len = sym->size;

	if (!len || len > sec->len - (sym->addr - sec->addr))
		return -ENOENT;
	n = cs_disasm(cs, sec->bytes + (sym->addr - sec->addr), len, sym->addr, 0, &in);
	if (!n)
		return -ENOENT;
	for (size_t i = 0; i < n && i < 4; i++) {
		if (!is_jbe(&in[i]))
			continue;
		if (i + 1 < n && emulated_kind(&in[i + 1]) &&
		    !strcmp(emulated_kind(&in[i + 1]), "push")) {
			site = i + 1;
			snprintf(f->why, sizeof(f->why),
				 "%.15s %.60s after the stack check, emulated", in[site].mnemonic,
				 in[site].op_str);
		} else {
			site = i;
			f->entry_jbe = true;
			snprintf(f->why, sizeof(f->why),
				 "the stack check's %s, emulated (taken hits skipped)",
				 in[site].mnemonic);
		}
		break;
	}
	if (!site)
		snprintf(f->why, sizeof(f->why), "%.15s %.60s at the entry, single-stepped",
			 in[0].mnemonic, in[0].op_str);
	f->entry_offset = in[site].address - sec->addr + sec_offset;
	for (size_t i = 0; i < n; i++) {
		if (in[i].id != X86_INS_RET)
			continue;
		if (f->n_rets == SITES_GO_MAX_RETS) {
			cs_free(in, n);
			return -E2BIG;
		}
		f->rets[f->n_rets++] = in[i].address - sec->addr + sec_offset;
	}
	/* A function that decodes short of its end was not understood. */
	if (in[n - 1].address + in[n - 1].size < sym->addr + len - 16 || !f->n_rets) {
		cs_free(in, n);
		return -ENOEXEC;
	}
	cs_free(in, n);
	return 0;
}

/* The address of a data object symbol (the itab), or 0. */
static uint64_t object_addr(Elf *e, const char *name)
{
	for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
			continue;
		d = sec_data(e, scn, &sh);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *nm;

			if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			nm = elf_strptr(e, sh.sh_link, sym.st_name);
			if (nm && !strcmp(nm, name))
				return sym.st_value;
		}
	}
	return 0;
}

/* A Go executable open for reading: its ELF, build info, and (loaded on demand) its
 * function table and relative relocations. */
struct go_elf {
	Elf *e;
	int fd;
	GElf_Ehdr eh;
	char version[32];
	bool have_pcln;
	struct gopcln pcln;
	GElf_Rela *rel; /* R_X86_64_RELATIVE, sorted by offset (PIE) */
	size_t n_rel;
};

static void go_close(struct go_elf *g)
{
	free(g->rel);
	elf_done(g->e);
	if (g->fd >= 0)
		close(g->fd);
}

/* The section called name, or whose name ends with it (".data.rel.ro.gopclntab" in some
 * PIE layouts), and its header. */
static Elf_Scn *section_named(Elf *e, const char *name, GElf_Shdr *sh)
{
	size_t shstrndx, n = strlen(name);

	if (elf_getshdrstrndx(e, &shstrndx))
		return NULL;
	for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
		const char *nm;
		size_t len;

		if (!gelf_getshdr(scn, sh) || sh->sh_type == SHT_NOBITS)
			continue;
		nm = elf_strptr(e, shstrndx, sh->sh_name);
		len = nm ? strlen(nm) : 0;
		if (len >= n && !strcmp(nm + len - n, name))
			return scn;
	}
	return NULL;
}

/* Opens path and reads its build info. Returns 0; -ENOENT when it is no Go program
 * (err says so); -ENOTSUP for Go before 1.18; -ENOEXEC when it is not a usable x86-64
 * ELF executable; -errno. */
static int go_open(const char *path, struct go_elf *g, char *err, size_t errlen)
{
	size_t size = 0;
	int rc;
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *d;

	memset(g, 0, sizeof(*g));
	g->fd = -1;
	g->e = elf_open(path, &g->fd, err, errlen);
	if (!g->e)
		return -errno;
	if (!gelf_getehdr(g->e, &g->eh) || g->eh.e_machine != EM_X86_64 ||
	    (g->eh.e_type != ET_EXEC && g->eh.e_type != ET_DYN)) {
		snprintf(err, errlen, "not an x86-64 executable");
		return -ENOEXEC;
	}
	if (!elf_size(g->e, &size) || g->eh.e_shoff > size ||
	    (uint64_t)g->eh.e_shnum * g->eh.e_shentsize > size - g->eh.e_shoff) {
		snprintf(err, errlen, "truncated ELF: section headers end past its %zu bytes",
			 size);
		return -ENOEXEC;
	}
	/* A cut file: its sections (names included) end past its end. */
	for (scn = elf_nextscn(g->e, NULL); scn; scn = elf_nextscn(g->e, scn)) {
		if (gelf_getshdr(scn, &sh) && sh.sh_type != SHT_NOBITS &&
		    (sh.sh_offset > size || sh.sh_size > size - sh.sh_offset)) {
			snprintf(err, errlen,
				 "truncated ELF: section %zu ends at %" PRIu64
				 ", past its %zu bytes",
				 elf_ndxscn(scn), (uint64_t)(sh.sh_offset + sh.sh_size), size);
			return -ENOEXEC;
		}
	}
	scn = section_named(g->e, ".go.buildinfo", &sh);
	if (!scn) {
		snprintf(err, errlen, "not a Go program (no .go.buildinfo)");
		return -ENOENT;
	}
	d = sec_data(g->e, scn, &sh);
	if (!d || !d->d_buf) {
		snprintf(err, errlen, "truncated: .go.buildinfo ends past the file's %zu bytes",
			 size);
		return -ENOEXEC;
	}
	rc = gopcln_buildinfo_version(d->d_buf, d->d_size, g->version, sizeof(g->version));
	if (rc == -ENOEXEC) {
		snprintf(err, errlen, "not a Go program (no build info in .go.buildinfo)");
		return -ENOENT;
	}
	/* Before 1.18 the function table had another layout and before 1.17 arguments
	 * were on the stack: neither is what the probes read. */
	if (rc) {
		snprintf(err, errlen, "Go 1.17 or older: not supported (Go 1.18+ only)");
		return -ENOTSUP;
	}
	return 0;
}

static int rela_cmp(const void *a, const void *b)
{
	const GElf_Rela *x = a, *y = b;

	return (x->r_offset > y->r_offset) - (x->r_offset < y->r_offset);
}

/* The R_X86_64_RELATIVE relocations of a PIE: the values of its pointers. */
static int go_relocs(struct go_elf *g)
{
	for (Elf_Scn *scn = elf_nextscn(g->e, NULL); scn; scn = elf_nextscn(g->e, scn)) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		d = sec_data(g->e, scn, &sh);
		if (!d)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Rela r;
			GElf_Rela *grown;

			if (!gelf_getrela(d, (int)i, &r) ||
			    GELF_R_TYPE(r.r_info) != R_X86_64_RELATIVE)
				continue;
			if (!(g->n_rel & (g->n_rel + 1)) || !g->rel) {
				grown = realloc(g->rel, (2 * g->n_rel + 1) * sizeof(*g->rel));
				if (!grown)
					return -ENOMEM;
				g->rel = grown;
			}
			g->rel[g->n_rel++] = r;
		}
	}
	if (g->n_rel)
		qsort(g->rel, g->n_rel, sizeof(*g->rel), rela_cmp);
	return 0;
}

/* The pointer stored at link-time address addr: its relocation's addend (PIE), else
 * the file's bytes. Returns 0 or -ENOENT (not in the file). */
static int go_read_ptr(struct go_elf *g, uint64_t addr, uint64_t *val)
{
	GElf_Rela key = { .r_offset = addr }, *r;

	r = g->n_rel ? bsearch(&key, g->rel, g->n_rel, sizeof(key), rela_cmp) : NULL;
	if (r) {
		*val = (uint64_t)r->r_addend;
		return 0;
	}
	for (Elf_Scn *scn = elf_nextscn(g->e, NULL); scn; scn = elf_nextscn(g->e, scn)) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC) || sh.sh_size < 8 ||
		    !in_range(addr, sh.sh_addr, sh.sh_size - 7))
			continue;
		d = sec_data(g->e, scn, &sh);
		if (!d || !d->d_buf || d->d_size != sh.sh_size)
			return -ENOENT;
		memcpy(val, (const uint8_t *)d->d_buf + (addr - sh.sh_addr), sizeof(*val));
		return 0;
	}
	return -ENOENT;
}

/* Loads the function table once. Returns 0 or -ENOEXEC (err says why). */
static int go_pcln(struct go_elf *g, char *err, size_t errlen)
{
	uint64_t text = 0;
	size_t size = 0;
	GElf_Shdr sh;
	Elf_Scn *scn;
	Elf_Data *d;
	int rc;

	if (g->have_pcln)
		return 0;
	rc = go_relocs(g);
	if (rc) {
		snprintf(err, errlen, "cannot read its relocations: %s", strerror(-rc));
		return rc;
	}
	scn = section_named(g->e, ".gopclntab", &sh);
	if (!scn) {
		snprintf(err, errlen, "no .gopclntab section");
		return -ENOEXEC;
	}
	d = sec_data(g->e, scn, &sh);
	if (!d || !d->d_buf || d->d_size != sh.sh_size) {
		elf_size(g->e, &size);
		snprintf(err, errlen, "truncated: .gopclntab ends past the file's %zu bytes", size);
		return -ENOEXEC;
	}
	/* textStart is a pointer: a PIE's is its relocation's addend. */
	if (go_read_ptr(g, sh.sh_addr + 24, &text))
		text = 0;
	rc = gopcln_init(&g->pcln, d->d_buf, d->d_size, text, err, errlen);
	if (rc)
		return rc;
	g->have_pcln = true;
	return 0;
}

/* The executable section holding addr, and that section's own file offset. */
static int code_at(Elf *e, uint64_t addr, struct sites_code *sec, uint64_t *sec_offset)
{
	for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR) || !in_range(addr, sh.sh_addr, sh.sh_size))
			continue;
		d = sec_data(e, scn, &sh);
		if (!d || !d->d_buf || d->d_size != sh.sh_size)
			return -ENOEXEC;
		sec->bytes = d->d_buf;
		sec->len = d->d_size;
		sec->addr = sh.sh_addr;
		*sec_offset = sh.sh_offset;
		return 0;
	}
	return -ENOEXEC;
}

/* A function by name: the symbol table's, else the function table's (stripped). Its code
 * section and that section's file offset. Returns 0, -ENOENT (absent), -ENOEXEC (the
 * function table cannot be read: err says why). */
static int go_find_func(struct go_elf *g, const char *name, struct sym *sym, struct sites_code *sec,
			uint64_t *sec_offset, bool *stripped, char *err, size_t errlen)
{
	uint64_t entry, end;
	int rc;

	if (find_sym(g->e, name, sym) && !sym_code(g->e, sym, sec, sec_offset)) {
		*sec_offset -= sym->addr - sec->addr;
		return 0;
	}
	rc = go_pcln(g, err, errlen);
	if (rc)
		return rc;
	if (gopcln_func(&g->pcln, name, &entry, &end)) {
		snprintf(err, errlen, "no %s", name);
		return -ENOENT;
	}
	sym->addr = entry;
	sym->size = end - entry;
	if (code_at(g->e, entry, sec, sec_offset)) {
		snprintf(err, errlen, "%s @0x%" PRIx64 " is not in the file's code", name, entry);
		return -ENOEXEC;
	}
	if (stripped)
		*stripped = true;
	return 0;
}

/* The *net.TCPConn,net.Conn itab among the itabs .itablink lists: the one whose methods
 * are net.(*TCPConn)'s Close, LocalAddr, Read, ... Write (net.Conn's, sorted by name),
 * at least three of them, the others runtime.unreachableMethod. Returns its link-time
 * address or 0. */
static uint64_t go_itab_from_links(struct go_elf *g)
{
	static const char *const conn_methods[] = {
		"net.(*TCPConn).Close",
		"net.(*TCPConn).LocalAddr",
		"net.(*TCPConn).Read",
		"net.(*TCPConn).RemoteAddr",
		"net.(*TCPConn).SetDeadline",
		"net.(*TCPConn).SetReadDeadline",
		"net.(*TCPConn).SetWriteDeadline",
		"net.(*TCPConn).Write",
	};
	char why[SITE_WHY_LEN];
	GElf_Shdr sh;

	if (go_pcln(g, why, sizeof(why)) || !section_named(g->e, ".itablink", &sh))
		return 0;
	for (uint64_t at = sh.sh_addr; at + 8 <= sh.sh_addr + sh.sh_size; at += 8) {
		uint64_t itab, fn;
		int match = 0, other = 0;

		if (go_read_ptr(g, at, &itab) || !itab)
			continue;
		/* itab: inter, _type, hash + pad, then fun[]. */
		for (size_t k = 0; k < 8 && !other; k++) {
			const char *nm;

			if (go_read_ptr(g, itab + 24 + 8 * k, &fn) || !fn)
				continue;
			nm = gopcln_name_at(&g->pcln, fn);
			/* The linker points methods no one calls at this stub. */
			if (nm && !strcmp(nm, "runtime.unreachableMethod"))
				continue;
			if (nm && !strcmp(nm, conn_methods[k]))
				match++;
			else
				other++;
		}
		if (match >= 3 && !other)
			return itab;
	}
	return 0;
}

int sites_go_detect(const char *path, char *ver, size_t vcap, char *err, size_t errlen)
{
	struct sites_code sec;
	struct go_elf g;
	uint64_t off;
	struct sym sym;
	int rc;

	snprintf(ver, vcap, "%s", "");
	rc = go_open(path, &g, err, errlen);
	if (rc) {
		go_close(&g);
		/* An old Go is reported (once) when it is hooked. */
		return rc == -ENOENT ? 0 : rc == -ENOTSUP ? 1 : rc;
	}
	snprintf(ver, vcap, "%s", g.version);
	rc = 1;
	for (int i = 0; i < SITES_GO_N && rc == 1; i++) {
		int r = go_find_func(&g, go_funcs[i], &sym, &sec, &off, NULL, err, errlen);

		/* A table that cannot be read is reported when it is hooked. */
		if (r == -ENOENT) {
			snprintf(err, errlen, "a Go program without crypto/tls");
			rc = 0;
		}
	}
	go_close(&g);
	return rc;
}

int sites_go(const char *path, struct sites_go *out, char *err, size_t errlen)
{
	static const char *const others[3] = { "crypto/tls.(*Conn).clientHandshake",
					       "crypto/tls.(*Conn).serverHandshake",
					       "crypto/tls.(*Conn).Close" };
	struct go_elf g;
	csh cs = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = go_open(path, &g, err, errlen);
	if (rc) {
		rc = -ENOENT;
		goto cleanup;
	}
	snprintf(out->version, sizeof(out->version), "%s", g.version);
	out->pie = g.eh.e_type == ET_DYN;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (int i = 0; i < SITES_GO_N; i++) {
		struct sites_code sec;
		uint64_t sec_offset;
		struct sym sym;

		rc = go_find_func(&g, go_funcs[i], &sym, &sec, &sec_offset, &out->stripped, err,
				  errlen);
		if (rc) {
			rc = -ENOENT;
			goto cleanup;
		}
		rc = go_func(cs, &sec, &sym, sec_offset, &out->f[i]);
		if (rc) {
			snprintf(err, errlen, "%s cannot be decoded (%s)", go_funcs[i],
				 rc == -E2BIG ? "too many RETs" : "not all of it is code");
			rc = -ENOENT;
			goto cleanup;
		}
	}
	for (int i = 0; i < 3; i++) {
		uint64_t *to = i < 2 ? &out->handshake[i] : &out->close, sec_offset;
		struct sites_code sec;
		struct sym sym;
		char why[SITE_WHY_LEN];

		if (!go_find_func(&g, others[i], &sym, &sec, &sec_offset, NULL, why, sizeof(why)))
			*to = sym.addr - sec.addr + sec_offset;
	}
	/* "go:itab." from Go 1.20, "go.itab." before; stripped: found by its methods. */
	out->tcpconn_itab = object_addr(g.e, "go:itab.*net.TCPConn,net.Conn");
	if (!out->tcpconn_itab)
		out->tcpconn_itab = object_addr(g.e, "go.itab.*net.TCPConn,net.Conn");
	if (!out->tcpconn_itab)
		out->tcpconn_itab = go_itab_from_links(&g);
	for (size_t i = 0; out->pie; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(g.e, (int)i, &ph))
			break;
		if (ph.p_type == PT_LOAD && ph.p_offset == 0) {
			out->load_vaddr = ph.p_vaddr;
			break;
		}
	}
	rc = 0;
cleanup:
	if (cs)
		cs_close(&cs);
	go_close(&g);
	return rc;
}
