#!/bin/sh
# Runs inside a kclient guest (as root, mounted with noac) on a filesim export: each POSIX rule
# of nfs/policy.py, done by root and by ordinary users through the real Linux client.
# Prints "CHECK name ok|FAIL detail" per rule (tests/nfs/test_kernel_posix.py reads them).
set -u
echo 'alice:x:1234:1234::/tmp:/bin/sh' >> /etc/passwd
echo 'alice:x:1234:' >> /etc/group
as() { who=$1; shift; su "$who" -s /bin/sh -c "$*" 2>&1; }
ck() { if [ "$2" = "$3" ]; then echo "CHECK $1 ok"; else echo "CHECK $1 FAIL got [$2] want [$3]"; fi; }
denied() { case "$1" in *"not permitted"*) echo EPERM;; *"denied"*) echo EACCES;; "") echo 0;; *) echo "$1";; esac; }
mkdir -p posix && cd posix && chmod 0777 .

# chown/chgrp (XSH chown): only root changes the owner; a non-owner may not even restate it
touch f && chown 1234:1234 f
ck chown_by_non_owner "$(denied "$(as nobody chown 65534 f)")" EPERM
ck chown_restate_by_non_owner "$(denied "$(as nobody chown 1234:1234 f)")" EPERM
ck chown_by_owner_to_other "$(denied "$(as alice chown 65534 f)")" EPERM
ck chgrp_by_owner_own_group "$(denied "$(as alice chgrp 1234 f)")" 0
ck chown_by_root "$(chown 65534:65534 f && stat -c %u:%g f)" 65534:65534

# setuid/setgid cleared by a write of an unprivileged caller (XSH write), and by chown
touch s && chmod 06777 s
as nobody "echo x >> s" >/dev/null
ck setuid_cleared_on_write "$(stat -c %a s)" 777
chmod 06755 s && chown 1234 s
ck setuid_cleared_on_chown "$(stat -c %a s)" 755
touch r && chmod 04755 r && echo x >> r
ck setuid_kept_on_root_write "$(stat -c %a r)" 4755

# sticky directory (XSH unlink, rename): only the owners of the entry or directory remove it
mkdir t && chmod 1777 t
as alice "touch t/a" >/dev/null
ck sticky_remove_by_other "$(denied "$(as nobody rm -f t/a)")" EPERM
ck sticky_rename_by_other "$(denied "$(as nobody mv t/a t/b)")" EPERM
ck sticky_remove_by_owner "$(denied "$(as alice rm -f t/a)")" 0
ck sticky_entry_gone "$(ls t | wc -l)" 0

# device nodes (XSH mknod): stored with their type and rdev; devices need root
mknod blk b 7 9 && mknod chr c 1 3
ck mknod_block "$(stat -c '%F %t %T' blk)" "block special file 7 9"
ck mknod_char "$(stat -c '%F %t %T' chr)" "character special file 1 3"
ck mknod_by_user "$(denied "$(as alice mknod t/nope c 1 3)")" EPERM
mkfifo p
ck mkfifo "$(stat -c %F p)" fifo

# utimes (XSH utimensat): given times by owner or root only; "now" with write permission
touch u && chmod 0666 u
ck utimes_given_by_other "$(denied "$(as nobody touch -d 2001-01-01 u)")" EPERM
ck utimes_now_by_writer "$(denied "$(as nobody touch u)")" 0
chmod 0644 u
ck utimes_now_without_write "$(denied "$(as nobody touch u)")" EACCES
ck utimes_given_by_root "$(touch -d '2001-01-01 00:00:00' u && stat -c %Y u)" 978307200

# set-group-ID directories (Linux, System V): new nodes take the directory's group
mkdir g && chown 0:1234 g && chmod 2777 g
touch g/x && mkdir g/sub
ck setgid_dir_group "$(stat -c %g g/x)" 1234
ck setgid_dir_inherited "$(stat -c %a g/sub | cut -c1)" 2

# a directory moved to another parent must be writable itself (XSH rename)
mkdir d1 d2 && chmod 0777 d1 d2 && mkdir d1/sub && chmod 0755 d1/sub
ck rename_dir_needs_write "$(denied "$(as nobody mv d1/sub d2/sub)")" EACCES
cd .. && rm -rf posix
# left for the host to see how the server stored them (native, or emulated without root)
mkdir kept && mknod kept/dev c 1 3 && touch kept/owned && chown 1234:1234 kept/owned
ck kept "$(stat -c '%F %u' kept/dev kept/owned | paste -sd, -)" \
  "character special file 0,regular empty file 1234"
echo "CHECK done ok"
