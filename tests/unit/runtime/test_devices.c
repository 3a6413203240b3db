/*
 * The device allow-list: its v1 lines, what its cgroup device program
 * decides (run by a small interpreter of the instructions it uses), and, as
 * root where a cgroup2 hierarchy is mounted, that the kernel's verifier
 * takes the program and that it refuses /dev/kmsg to a process in the
 * cgroup while /dev/null still works.
 */
#include "runtime/linux/rt_linux.h"
#include "test.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(v1_lines)
{
	char line[48];
	struct strv all = STRV_INIT;
	for (size_t i = 0; i < cg_dev_nrules; i++) {
		cg_dev_rule_v1(&cg_dev_rules[i], line, sizeof(line));
		strv_push(&all, line);
	}
	CHECK_STR(all.v[0], "c *:* m");
	CHECK_STR(all.v[1], "b *:* m");
	CHECK_STR(all.v[2], "c 1:3 rwm");
	CHECK_STR(all.v[cg_dev_nrules - 1], "c 136:* rwm");
	/* Nothing gives read or write on every node, and mem (1:1) or kmsg (1:11) never appear. */
	for (size_t i = 0; i < all.n; i++) {
		CHECK(strncmp(all.v[i], "a ", 2) != 0);
		CHECK(!strstr(all.v[i], "*:* r") && !strstr(all.v[i], "*:* w"));
		CHECK(strcmp(all.v[i], "c 1:1 rwm") != 0 && strcmp(all.v[i], "c 1:11 rwm") != 0);
	}
	strv_release(&all);
}

/* Run the program on one access (an interpreter of exactly the opcodes it uses). */
static int run(const struct bpf_insn *p, size_t n, int type, unsigned access, uint32_t major,
	       uint32_t minor, int *bad)
{
	uint32_t ctx[3] = {(access << 16) | (uint32_t)type, major, minor};
	uint64_t r[11] = {0};
	*bad = 0;
	for (size_t pc = 0, steps = 0; pc < n && steps < 1000; pc++, steps++) {
		const struct bpf_insn *i = &p[pc];
		switch (i->code) {
		case BPF_LDX | BPF_MEM | BPF_W:
			if (i->src_reg != BPF_REG_1 || i->off % 4 || i->off < 0 || i->off > 8)
				return *bad = 1, -1;
			r[i->dst_reg] = ctx[i->off / 4];
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			r[i->dst_reg] = (uint32_t)r[i->dst_reg] & (uint32_t)i->imm;
			break;
		case BPF_ALU | BPF_RSH | BPF_K:
			r[i->dst_reg] = (uint32_t)r[i->dst_reg] >> i->imm;
			break;
		case BPF_ALU64 | BPF_MOV | BPF_X:
			r[i->dst_reg] = r[i->src_reg];
			break;
		case BPF_ALU64 | BPF_MOV | BPF_K:
			r[i->dst_reg] = (uint64_t)(int64_t)i->imm;
			break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (r[i->dst_reg] != (uint64_t)(int64_t)i->imm)
				pc += (size_t)i->off;
			break;
		case BPF_JMP | BPF_EXIT:
			return (int)r[0];
		default:
			return *bad = 1, -1;
		}
	}
	return *bad = 1, -1;
}

TEST(program_decides)
{
	struct bpf_insn p[128];
	size_t n = cg_dev_prog(p, ARRAY_SIZE(p));
	CHECK(n > 10);
	CHECK_INT(cg_dev_prog(p, 4), 0);
	n = cg_dev_prog(p, ARRAY_SIZE(p));
	const unsigned R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;
	const int C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
	static const struct {
		int type;
		unsigned access, major, minor;
		int want;
	} cases[] = {
		{C, 0, 1, 3, 1},  {C, 0, 1, 9, 1},   {C, 0, 5, 2, 1},	 {C, 0, 136, 7, 1},
		{C, 0, 1, 11, 0}, {C, 0, 1, 1, 0},   {C, 0, 10, 200, 0}, {B, 0, 8, 0, 0},
		{C, 0, 4, 1, 0},  {C, 0, 137, 0, 0},
	};
	int bad;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (unsigned acc = 1; acc <= 7; acc++) {
			int got =
				run(p, n, cases[i].type, acc, cases[i].major, cases[i].minor, &bad);
			CHECK(!bad);
			/* mknod alone is allowed for every node; read or write only for the list.
			 */
			int want = cases[i].want || acc == M;
			if (got != want)
				FAILF("%c %u:%u access %u: got %d, want %d",
				      cases[i].type == B ? 'b' : 'c', cases[i].major,
				      cases[i].minor, acc, got, want);
		}
	}
	CHECK_INT(run(p, n, C, R | W, 1, 3, &bad), 1);
	CHECK_INT(run(p, n, B, M, 8, 0, &bad), 1);
	CHECK_INT(run(p, n, B, R | M, 8, 0, &bad), 0);
}

/* In a child: join the cgroup dir, then report which opens work (bit 0 null, 1 kmsg, 2 a planted
 * mem). */
static int probe_in(const char *dir, const char *planted)
{
	pid_t pid = fork();
	if (pid == 0) {
		autofree char *procs = xasprintf("%s/cgroup.procs", dir);
		struct clbsd_err err;
		if (fs_write_str(procs, "0", &err) < 0)
			_exit(100);
		int res = 0, fd;
		if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && write(fd, "x", 1) == 1)
			res |= 1;
		if ((fd = open("/dev/kmsg", O_RDONLY | O_CLOEXEC)) >= 0 || errno != EPERM)
			res |= 2;
		if ((fd = open(planted, O_RDONLY | O_CLOEXEC)) >= 0 || errno != EPERM)
			res |= 4;
		_exit(res);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

TEST(program_loads_and_refuses)
{
	const char *unified = "/sys/fs/cgroup/unified";
	struct statfs sf;
	if (getuid() != 0 || statfs(unified, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		if (statfs("/sys/fs/cgroup", &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC ||
		    getuid()) {
			printf("# program_loads_and_refuses: not root or no cgroup2 here; not "
			       "loaded\n");
			return;
		}
		unified = "/sys/fs/cgroup";
	}
	autofree char *dir = xasprintf("%s/clbsd-devtest-%d", unified, (int)getpid());
	autofree char *tmpd = xstrdup("/tmp/clbsd-devtest-XXXXXX");
	if (mkdir(dir, 0755) < 0)
		FAILF("mkdir %s: %s", dir, strerror(errno));
	struct clbsd_err err;
	int rc = cg_dev_attach_v2(dir, &err);
	/* Twice: a reused cgroup keeps one program, not two. */
	int rc2 = rc == 0 ? cg_dev_attach_v2(dir, &err) : 0;
	union bpf_attr q = {0};
	autoclose int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	q.query.target_fd = (uint32_t)cfd;
	q.query.attach_type = BPF_CGROUP_DEVICE;
	long qr = syscall(SYS_bpf, BPF_PROG_QUERY, &q, sizeof(q));
	/* A node the host made on a mount without nodev (under /tmp: the cgroup, not nodev, refuses
	 * it). */
	int res = -1;
	char planted[128] = "";
	if (rc == 0 && mkdtemp(tmpd)) {
		snprintf(planted, sizeof(planted), "%s/mem", tmpd);
		if (mknod(planted, S_IFCHR | 0600, makedev(1, 1)) == 0)
			res = probe_in(dir, planted);
		unlink(planted);
		rmdir(tmpd);
	}
	rmdir(dir);
	if (rc < 0)
		FAILF("attach: %s", err.msg);
	CHECK_INT(rc2, 0);
	CHECK_INT(qr, 0);
	CHECK_INT(q.query.prog_cnt, 1);
	/* null works; kmsg and the planted mem fail with EPERM. */
	CHECK_INT(res, 1);
}

TEST_MAIN_BEGIN("runtime_devices")
RUN(v1_lines);
RUN(program_decides);
RUN(program_loads_and_refuses);
TEST_MAIN_END
