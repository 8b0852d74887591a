"""Last steps of the runtime image build, run by the image's own python3 inside the chroot.

``finish.py strip`` leaves python3, the init (tini) and the program interpreter as the only
files anything can execute:

* every entry of the program directories (``/usr/bin``, ``/usr/sbin``, ``/usr/local/*bin``,
  ``/usr/games``, ``/usr/libexec``; ``/bin`` and ``/sbin`` are links to them) is removed,
  except ``python3``, the interpreter it points to, and ``tini``;
* apt, dpkg, debconf and perl are removed with their helper programs and state (dpkg's
  ``status`` file stays: the package inventory image scanners read), as are the shells'
  start-up files;
* symbolic links left pointing at something removed are removed;
* every other regular file loses its execute and set-id bits (shared libraries and Python
  modules are loaded with ``mmap``, which needs no execute bit);
* then the whole tree is checked, and the build fails if anything else is executable.

``finish.py facts`` (run afterwards, in a fresh interpreter) proves that the stripped image
still runs what the runner needs (numpy, pandas, ctypes for ``prctl``) and prints the
versions as ``key=value`` lines, which the host turns into image labels.

The rules are data below, each with its reason; the walk is sorted, so the same packages
always give the same file list.
"""

import os
import stat
import sys

#: Directories whose every entry is a program. Only the names of KEEP_PROGRAMS survive.
PROGRAM_DIRS = (
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/games",
    "/usr/local/games",
)

#: Whole trees removed, each with its reason.
REMOVE = (
    ("/usr/libexec", "helper programs only"),
    ("/usr/lib/apt", "apt's methods and helpers: no package manager at run time"),
    ("/usr/lib/dpkg", "dpkg's helpers"),
    ("/usr/share/dpkg", "dpkg's data"),
    ("/usr/share/debconf", "debconf is perl"),
    ("/var/cache/debconf", "debconf's state"),
    ("/etc/apt", "apt's configuration, including the build's mirror"),
    ("/etc/dpkg", "dpkg's configuration"),
    ("/var/lib/apt", "package lists"),
    ("/var/cache/apt", "downloaded packages"),
    ("/var/log/apt", "install logs"),
    ("/usr/share/perl", "perl's library"),
    ("/usr/share/perl5", "perl's library"),
    ("/etc/perl", "perl's configuration"),
    ("/usr/share/bash-completion", "shell start-up files"),
    ("/etc/bash.bashrc", "shell start-up files"),
    ("/etc/profile", "shell start-up files"),
    ("/etc/profile.d", "shell start-up files"),
    ("/etc/skel", "home directory templates for login users"),
    ("/etc/cron.daily", "maintenance jobs of removed programs"),
)

#: Globs of removed trees below /usr/lib/<multiarch>.
REMOVE_MULTIARCH = ("perl", "perl-base", "perl5")

#: What is kept of /var/lib/dpkg: the package inventory (plain text, read by scanners).
DPKG_KEEP = ("status",)

#: mmdebstrap removes this file itself after the hooks (and fails if it is missing).
MMDEBSTRAP_OWN = "/etc/apt/apt.conf.d/00mmdebstrap"

#: Trees never walked: kernel file systems mounted into the chroot while it is built.
SKIP = ("/proc", "/sys", "/dev", "/run")


def keep_programs():
    """python3, the versioned interpreter it links to, and the init."""
    target = os.readlink("/usr/bin/python3")
    if "/" in target or not target.startswith("python3."):
        sys.exit("finish.py: unexpected /usr/bin/python3 -> %s" % target)
    return {"/usr/bin/python3", "/usr/bin/" + target, "/usr/bin/tini"}


def program_interpreters():
    """The ELF program interpreter (ld.so): the kernel needs it to start python3 and tini."""
    found = set()
    for lib in ("/usr/lib", "/usr/lib64"):
        for root, _dirs, files in walk(lib):
            for name in files:
                if name.startswith("ld-linux") and ".so" in name:
                    path = os.path.join(root, name)
                    if not os.path.islink(path):
                        found.add(path)
    if not found:
        sys.exit("finish.py: no program interpreter (ld-linux*.so*) found")
    return found


def walk(top):
    """os.walk, sorted, on one file system, without the kernel's trees."""
    if not os.path.isdir(top) or os.path.islink(top):
        return
    device = os.lstat("/").st_dev
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(
            d
            for d in dirs
            if os.path.join(root, d) not in SKIP
            and os.lstat(os.path.join(root, d)).st_dev == device
        )
        yield root, dirs, sorted(files)


def remove(path, counts):
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        counts["files"] += 1
        return
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
            counts["files"] += 1
        for name in dirs:
            sub = os.path.join(root, name)
            if os.path.islink(sub):
                os.unlink(sub)
            else:
                os.rmdir(sub)
    os.rmdir(path)


def strip():
    keep = keep_programs()
    loaders = program_interpreters()
    counts = {"files": 0, "links": 0, "modes": 0}

    for top in PROGRAM_DIRS:
        if os.path.isdir(top) and not os.path.islink(top):
            for name in sorted(os.listdir(top)):
                path = os.path.join(top, name)
                if path not in keep:
                    remove(path, counts)
    for path, _reason in REMOVE:
        if path == "/etc/apt":
            # Everything but mmdebstrap's own file, which it removes itself.
            for root, _dirs, files in list(walk(path)):
                for name in files:
                    full = os.path.join(root, name)
                    if full != MMDEBSTRAP_OWN:
                        remove(full, counts)
        elif os.path.lexists(path):
            remove(path, counts)
    for entry in sorted(os.listdir("/usr/lib")):
        multiarch = os.path.join("/usr/lib", entry)
        if "-linux-" in entry and os.path.isdir(multiarch):
            for name in REMOVE_MULTIARCH:
                if os.path.lexists(os.path.join(multiarch, name)):
                    remove(os.path.join(multiarch, name), counts)
    dpkg = "/var/lib/dpkg"
    if os.path.isdir(dpkg):
        for name in sorted(os.listdir(dpkg)):
            if name not in DPKG_KEEP:
                remove(os.path.join(dpkg, name), counts)

    # Links to removed programs (/etc/alternatives/awk -> /usr/bin/mawk, ...), until none
    # is left (a chain loses one link per pass).
    while True:
        dangling = [
            os.path.join(root, name)
            for root, dirs, files in walk("/")
            for name in files + dirs
            if os.path.islink(os.path.join(root, name))
            and not os.path.exists(os.path.join(root, name))
        ]
        if not dangling:
            break
        for path in dangling:
            os.unlink(path)
            counts["links"] += 1

    allowed = keep | loaders
    for root, _dirs, files in walk("/"):
        for name in files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or path in allowed:
                continue
            mode = stat.S_IMODE(st.st_mode)
            bare = mode & ~(0o111 | stat.S_ISUID | stat.S_ISGID)
            if bare != mode:
                os.chmod(path, bare)
                counts["modes"] += 1

    left = sorted(executables())
    unexpected = [path for path in left if path not in allowed]
    if unexpected:
        sys.exit("finish.py: still executable: %s" % ", ".join(unexpected))
    print(
        "finish.py: removed %(files)d files and %(links)d dangling links, "
        "cleared execute bits on %(modes)d files" % counts,
        file=sys.stderr,
    )
    print("finish.py: executable: %s" % ", ".join(left), file=sys.stderr)


def executables():
    """Regular files anything could execute (an execute or set-id bit)."""
    for root, _dirs, files in walk("/"):
        for name in files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_mode & (0o111 | stat.S_ISUID | stat.S_ISGID):
                yield path


def facts():
    """Imports what the runner and the strategies need, and prints their versions."""
    import ctypes

    import numpy
    import pandas

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(3, 0, 0, 0, 0) < 0:  # PR_GET_DUMPABLE: what the runner relies on
        sys.exit("finish.py: prctl is not callable through ctypes")
    frame = pandas.DataFrame({"x": numpy.arange(4.0)})
    if float(frame["x"].rolling(2).mean().iloc[-1]) != 2.5:
        sys.exit("finish.py: numpy/pandas computed a wrong result")
    print("python=%d.%d.%d" % sys.version_info[:3])
    print("numpy=%s" % numpy.__version__)
    print("pandas=%s" % pandas.__version__)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "strip":
        strip()
    elif command == "facts":
        facts()
    else:
        sys.exit("usage: finish.py strip|facts")
