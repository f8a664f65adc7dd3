package io.qsup.qemu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What the host offers QEMU: whether KVM is usable (and why not), where the QEMU binary is, whether it supports
 * {@code -sandbox}, and how to check the files definitions refer to. {@link #probe(String)} is the only place that
 * looks at the host; the command line builder takes these facts as plain data.
 *
 * <p>What QEMU's {@code -help} says is the one costly fact (a process start, 17–28 ms of qsupd's own start on a quiet
 * host), so qsupd keeps it in a cache file ({@link #probe(String, Path)}), as libvirt keeps its QEMU capabilities:
 * valid only for the same binary, the same file (device, inode, size, modification and change times: a package
 * upgrade replaces the file, which changes them all) and the same cache format. Anything else in that file, or a file
 * that cannot be read, means asking QEMU again; the cache never fails a start.
 */
public record HostFacts(
        String qemuBinary,
        Path qemuPath,
        String qemuProblem,
        boolean kvmUsable,
        String kvmProblem,
        boolean sandboxSupported,
        FileCheck files) {

    /** The KVM device. */
    public static final Path KVM_DEVICE = Path.of("/dev/kvm");
    /**
     * The first of the cache file's three lines; the binary's identity and {@code sandbox true|false} follow. It is
     * written to a temporary file beside it and renamed over it, so a reader sees a whole file or none.
     */
    private static final String CACHE_FORMAT = "qsup host facts 1";

    /** A host with usable KVM and a sandbox-capable QEMU, where {@code files} decides which files exist. */
    public static HostFacts fixed(boolean kvmUsable, boolean sandboxSupported, FileCheck files) {
        return new HostFacts(
                "qemu-system-x86_64",
                Path.of("/usr/bin/qemu-system-x86_64"),
                null,
                kvmUsable,
                kvmUsable ? null : "/dev/kvm not found",
                sandboxSupported,
                files);
    }

    /** Looks at this host: {@code /dev/kvm}, the QEMU binary (found on PATH when given without a slash) and its help. */
    public static HostFacts probe(String qemuBinary) {
        return probe(qemuBinary, null);
    }

    /**
     * As {@link #probe(String)}, with what QEMU's help says kept in {@code cache} (null: no cache) and read from it
     * while it describes the same binary file.
     */
    public static HostFacts probe(String qemuBinary, Path cache) {
        String kvmProblem = probeKvm();
        Path qemu = locate(qemuBinary);
        String qemuProblem = null;
        boolean sandbox = false;
        if (qemu == null) {
            qemuProblem = "QEMU binary '" + qemuBinary + "' not found"
                    + (qemuBinary.contains("/") ? "" : " on PATH")
                    + "; install qemu-system-x86 or set qemu-binary in qsupd.yaml";
        } else {
            String identity = cache == null ? null : identity(qemu);
            Boolean cached = identity == null ? null : HelpCache.read(cache, identity);
            if (cached != null) {
                sandbox = cached;
            } else {
                String help = help(qemu);
                if (help == null) {
                    qemuProblem = qemu + " -help did not answer; check that it is a working QEMU";
                } else {
                    sandbox = help.contains("\n-sandbox");
                    if (identity != null) {
                        HelpCache.write(cache, identity, sandbox);
                    }
                }
            }
        }
        return new HostFacts(qemuBinary, qemu, qemuProblem, kvmProblem == null, kvmProblem, sandbox, FileCheck.real());
    }

    private static String probeKvm() {
        if (!Files.exists(KVM_DEVICE)) {
            return "/dev/kvm not found (no hardware virtualization, or the kvm module is not loaded)";
        }
        // Open it for real: permission bits alone miss ACLs and device cgroups.
        try (RandomAccessFile f = new RandomAccessFile(KVM_DEVICE.toFile(), "rw")) {
            return null;
        } catch (IOException e) {
            return "/dev/kvm cannot be opened for reading and writing by user '" + System.getProperty("user.name")
                    + "' (" + e.getMessage() + "); add the user to group kvm";
        }
    }

    private static Path locate(String binary) {
        if (binary.contains("/")) {
            Path p = Path.of(binary);
            return Files.isExecutable(p) ? p : null;
        }
        String pathEnv = System.getenv("PATH");
        if (pathEnv == null) {
            return null;
        }
        for (String dir : pathEnv.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path p = Path.of(dir, binary);
            if (Files.isExecutable(p) && !Files.isDirectory(p)) {
                return p;
            }
        }
        return null;
    }

    /**
     * What identifies the binary's file: its real path, device, inode, size, modification and change times; null when
     * they cannot be read (then nothing is cached).
     */
    private static String identity(Path qemu) {
        try {
            Path real = qemu.toRealPath();
            Map<String, Object> a = Files.readAttributes(real, "unix:dev,ino,size,lastModifiedTime,ctime");
            return real + " dev=" + a.get("dev") + " ino=" + a.get("ino") + " size=" + a.get("size") + " mtime="
                    + ((FileTime) a.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS) + " ctime="
                    + ((FileTime) a.get("ctime")).to(TimeUnit.NANOSECONDS);
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static final class HelpCache {
        private static final int MAX_BYTES = 4096;

        /** The cached sandbox support, or null when the file is absent, unreadable, for another binary or malformed. */
        static Boolean read(Path cache, String identity) {
            byte[] raw;
            // a regular file only: a FIFO put in its place would block the read, and with it qsupd's start
            if (!Files.isRegularFile(cache, LinkOption.NOFOLLOW_LINKS)) {
                return null;
            }
            try (InputStream in = Files.newInputStream(cache, LinkOption.NOFOLLOW_LINKS)) {
                raw = in.readNBytes(MAX_BYTES + 1);
            } catch (IOException | RuntimeException e) {
                return null;
            }
            if (raw.length > MAX_BYTES) {
                return null;
            }
            String[] lines = new String(raw, StandardCharsets.UTF_8).split("\n", -1);
            if (lines.length != 4 || !lines[3].isEmpty() || !lines[0].equals(CACHE_FORMAT)
                    || !lines[1].equals(identity)) {
                return null;
            }
            return switch (lines[2]) {
                case "sandbox true" -> Boolean.TRUE;
                case "sandbox false" -> Boolean.FALSE;
                default -> null;
            };
        }

        /** Writes the cache; a folder that is missing or read-only only means asking QEMU again next time. */
        static void write(Path cache, String identity, boolean sandbox) {
            Path dir = cache.toAbsolutePath().getParent();
            if (dir == null || !Files.isDirectory(dir) || identity.indexOf('\n') >= 0) {
                return;
            }
            Path tmp = null;
            try {
                tmp = Files.createTempFile(dir, "." + cache.getFileName() + ".", ".tmp");
                Files.writeString(tmp, CACHE_FORMAT + "\n" + identity + "\nsandbox " + sandbox + "\n");
                Files.move(tmp, cache, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                tmp = null;
            } catch (IOException | RuntimeException e) {
                // no cache this time
            } finally {
                if (tmp != null) {
                    try {
                        Files.deleteIfExists(tmp);
                    } catch (IOException ignored) {
                        // a stray temporary file, named as ours, is all that is left
                    }
                }
            }
        }
    }

    private static String help(Path qemu) {
        try {
            Process p = new ProcessBuilder(qemu.toString(), "-help")
                    .redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try (InputStream in = p.getInputStream()) {
                in.transferTo(out);
            }
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return null;
            }
            return out.toString(StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }
}
