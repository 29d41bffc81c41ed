#!/bin/sh
# The smallest container that is one: lab 8 of the lab book.
# Usage (as root): sh mini-container.sh ROOTFS COMMAND [ARG...]
set -eu
rootfs=$(realpath "$1")
shift

# New UTS, PID, mount, IPC and network namespaces. --fork: the child, not
# unshare itself, is PID 1 of the new PID namespace. --kill-child: if
# unshare dies, so does the container.
exec unshare --uts --pid --mount --ipc --net --fork --kill-child \
  sh -eu -c '
rootfs=$1
shift

hostname mini                      # UTS: a host name of its own
ip link set lo up                  # net: only a loopback, brought up

mount --make-rprivate /            # nothing below propagates to the host
mount --bind "$rootfs" "$rootfs"   # pivot_root wants a mount point

# A /proc for the new PID namespace, and a /dev with four devices.
mount -t proc -o nosuid,nodev,noexec proc "$rootfs/proc"
mount -t tmpfs -o nosuid,mode=755 dev "$rootfs/dev"
for d in null zero random urandom; do
  touch "$rootfs/dev/$d"
  mount --bind "/dev/$d" "$rootfs/dev/$d"
done

cd "$rootfs"
pivot_root . .                     # the rootfs becomes /, the old / on top
umount -l .                        # ... and the old / is gone
cd /

exec "$@"                          # the command, as PID 1
' mini "$rootfs" "$@"
