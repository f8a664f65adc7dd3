package io.qsup.qemu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * What the host offers QEMU: whether KVM is usable (and why not), where the QEMU binary is, whether it supports
 * {@code -sandbox}, and how to check the files definitions refer to. {@link #probe(String)} is the only place that
 * looks at the host; the command line builder takes these facts as plain data.
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
        String kvmProblem = probeKvm();
        Path qemu = locate(qemuBinary);
        String qemuProblem = null;
        boolean sandbox = false;
        if (qemu == null) {
            qemuProblem = "QEMU binary '" + qemuBinary + "' not found"
                    + (qemuBinary.contains("/") ? "" : " on PATH")
                    + "; install qemu-system-x86 or set qemu-binary in qsupd.yaml";
        } else {
            String help = help(qemu);
            if (help == null) {
                qemuProblem = qemu + " -help did not answer; check that it is a working QEMU";
            } else {
                sandbox = help.contains("\n-sandbox");
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
