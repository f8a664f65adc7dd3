package io.qsup.testing;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The project's tiny test guest (Debian cloud kernel + busybox initramfs, see {@code guest/build-test-guest.sh}),
 * built on first use in each JVM.
 *
 * <p>Thread-safe: {@link #get()} builds at most once per JVM under the class lock; instances are immutable.
 */
public final class TestGuest {

    /** The line the guest prints on its console once it reads commands. */
    public static final String READY_LINE = "QSUP-GUEST READY";

    private static final long BUILD_TIMEOUT_MINUTES = 10;

    private static TestGuest instance;
    private static IllegalStateException failure;

    private final Path dir;
    private final String append;

    private TestGuest(Path dir, String append) {
        this.dir = dir;
        this.append = append;
    }

    /**
     * Returns the guest, running the build script once per JVM (a no-op when its outputs are up to date).
     *
     * @throws IllegalStateException when the guest cannot be built; the message is the script's own, saying what is missing
     */
    public static synchronized TestGuest get() {
        if (instance != null) {
            return instance;
        }
        if (failure != null) {
            throw failure;
        }
        try {
            instance = build();
            return instance;
        } catch (IllegalStateException e) {
            failure = e;
            throw e;
        }
    }

    /** The kernel image ({@code -kernel}). */
    public Path kernel() {
        return dir.resolve("vmlinuz");
    }

    /** The gzip cpio initramfs ({@code -initrd}). */
    public Path initrd() {
        return dir.resolve("initramfs.cpio.gz");
    }

    /** The kernel command line ({@code -append}): console on ttyS0, and a panic that stays a panic ({@code panic=0}). */
    public String append() {
        return append;
    }

    /** The folder holding the built guest and its {@code stamp} (kernel package and version it was built from). */
    public Path dir() {
        return dir;
    }

    /** The QEMU arguments that boot this guest: {@code -kernel K -initrd I -append A}. */
    public List<String> qemuBootArgs() {
        return List.of("-kernel", kernel().toString(), "-initrd", initrd().toString(), "-append", append);
    }

    private static TestGuest build() {
        Path project = Path.of(System.getProperty("qsup.projectDir", System.getProperty("user.dir"))).toAbsolutePath();
        Path script = project.resolve("guest/build-test-guest.sh");
        Path out = project.resolve("build/test-guest");
        if (!Files.isRegularFile(script)) {
            throw new IllegalStateException("test guest build script not found at " + script
                    + "; set the system property qsup.projectDir to the qsup checkout (Maven does this)");
        }
        String output;
        int exit;
        try {
            Process process = new ProcessBuilder("bash", script.toString(), out.toString())
                    .redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .start();
            // Read while it runs so a chatty apt cannot block on a full pipe.
            try (InputStream in = process.getInputStream()) {
                output = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
            }
            if (!process.waitFor(BUILD_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                process.destroyForcibly();
                throw new IllegalStateException("building the test guest took over " + BUILD_TIMEOUT_MINUTES
                        + " minutes; run " + script + " by hand to see where it stops");
            }
            exit = process.exitValue();
        } catch (IOException e) {
            throw new IllegalStateException("cannot run " + script + " with bash: " + e.getMessage()
                    + "; the test guest needs bash on the PATH", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while building the test guest", e);
        }
        if (exit != 0) {
            throw new IllegalStateException("test guest not available (" + script + " exited " + exit + "): "
                    + (output.isEmpty() ? "no message" : output));
        }
        try {
            String append = Files.readString(out.resolve("append")).strip();
            TestGuest guest = new TestGuest(out, append);
            for (Path p : List.of(guest.kernel(), guest.initrd())) {
                if (!Files.isRegularFile(p)) {
                    throw new IllegalStateException(script + " succeeded but " + p + " is missing; run it with --force");
                }
            }
            return guest;
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the built test guest in " + out + ": " + e.getMessage()
                    + "; run " + script + " --force", e);
        }
    }
}
