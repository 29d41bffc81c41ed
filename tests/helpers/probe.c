/* probe: try one system call per argument and print how it went, e.g.
 * "keyctl=EPERM". Built statically by tests/security.rs and copied into
 * the container's rootfs, so seccomp and capabilities can be tested on the
 * very syscalls they are meant to stop, which busybox has no applets for. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static long attempt(const char *name) {
    if (!strcmp(name, "unshare")) return syscall(SYS_unshare, CLONE_NEWNS);
    if (!strcmp(name, "mount")) return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0);
    if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, 0, 0);
    if (!strcmp(name, "bpf")) return syscall(SYS_bpf, 0 /* MAP_CREATE */, 0, 0);
    if (!strcmp(name, "init_module")) return syscall(SYS_init_module, 0, 0, "");
    if (!strcmp(name, "finit_module")) return syscall(SYS_finit_module, -1, "", 0);
    if (!strcmp(name, "vsock")) return socket(AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(name, "inet")) return socket(AF_INET, SOCK_DGRAM, 0);
    if (!strcmp(name, "raw")) return socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (!strcmp(name, "mkdir")) return syscall(SYS_mkdir, "/tmp/probe-dir", 0755);
    if (!strcmp(name, "euid")) return geteuid();
    if (!strncmp(name, "open:", 5)) return open(name + 5, O_RDONLY);
    if (!strncmp(name, "rdonly:", 7)) {
        struct statvfs st;
        if (statvfs(name + 7, &st) != 0) return -1;
        return (st.f_flag & ST_RDONLY) ? 1 : 0;
    }
    errno = EINVAL;
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = attempt(argv[i]);
        if (r == -2 && errno == EINVAL) { printf("%s=UNKNOWN\n", argv[i]); continue; }
        if (!strcmp(argv[i], "euid")) { printf("euid=%ld\n", r); continue; }
        if (!strncmp(argv[i], "rdonly:", 7) && r >= 0) { printf("%s=%s\n", argv[i], r ? "yes" : "no"); continue; }
        if (r >= 0) printf("%s=OK\n", argv[i]);
        else printf("%s=%s\n", argv[i], errno == EPERM ? "EPERM" : strerrorname_np(errno));
    }
    return 0;
}
