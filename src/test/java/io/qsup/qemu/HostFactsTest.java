package io.qsup.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The host probe: finds QEMU on PATH, reads its sandbox support, keeps that answer while the binary's file stays the
 * same, and explains what is missing. The cache tests run small executables that answer {@code -help} as QEMU does.
 */
class HostFactsTest {
    @TempDir Path dir;

    @Test
    void probeFindsTheInstalledQemuAndItsSandboxSupport() {
        ArgvQemuAcceptanceTest.requireTool("qemu-system-x86_64");
        HostFacts h = HostFacts.probe("qemu-system-x86_64");
        assertThat(h.qemuProblem()).isNull();
        assertThat(h.qemuPath()).isNotNull();
        assertThat(Files.isExecutable(h.qemuPath())).isTrue();
        assertThat(h.sandboxSupported()).as("Debian builds QEMU with seccomp").isTrue();
        assertThat(h.kvmUsable()).isEqualTo(h.kvmProblem() == null);
        if (!h.kvmUsable()) {
            assertThat(h.kvmProblem()).contains("/dev/kvm");
        }
    }

    @Test
    void whatQemuSaysIsKeptForTheSameBinaryFileAndAskedAgainOnceTheFileIsReplaced() throws Exception {
        Path runs = dir.resolve("runs");
        Path qemu = fakeQemu("qemu-system-x86_64", runs, true);
        Path cache = dir.resolve("host-facts");

        assertThat(HostFacts.probe(qemu.toString(), cache).sandboxSupported()).isTrue();
        assertThat(runs(runs)).as("asked once").isEqualTo(1);
        assertThat(Files.readString(cache)).startsWith("qsup host facts 1\n" + qemu.toRealPath() + " dev=")
                .endsWith("\nsandbox true\n");
        HostFacts again = HostFacts.probe(qemu.toString(), cache);
        assertThat(again.sandboxSupported()).isTrue();
        assertThat(again.qemuProblem()).isNull();
        assertThat(runs(runs)).as("answered from the cache").isEqualTo(1);

        // a package upgrade renames a new file over the old one: another inode, other times
        Path upgraded = fakeQemu("qemu-new", runs, false);
        Files.move(upgraded, qemu, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        assertThat(HostFacts.probe(qemu.toString(), cache).sandboxSupported()).as("the new binary's answer").isFalse();
        assertThat(runs(runs)).isEqualTo(2);
        assertThat(HostFacts.probe(qemu.toString(), cache).sandboxSupported()).isFalse();
        assertThat(runs(runs)).isEqualTo(2);

        // the same file, changed in place (its modification and change times move)
        Files.setLastModifiedTime(qemu, FileTime.fromMillis(Files.getLastModifiedTime(qemu).toMillis() - 60_000));
        HostFacts.probe(qemu.toString(), cache);
        assertThat(runs(runs)).isEqualTo(3);

        // another binary named in qsupd.yaml never takes this one's answer
        Path other = fakeQemu("qemu-other", runs, true);
        assertThat(HostFacts.probe(other.toString(), cache).sandboxSupported()).isTrue();
        assertThat(runs(runs)).isEqualTo(4);
        assertThat(HostFacts.probe(qemu.toString(), null).sandboxSupported()).as("no cache: asked every time")
                .isFalse();
        assertThat(runs(runs)).isEqualTo(5);
    }

    @Test
    void aCacheFileThatIsNotOneOfOursMeansAskingQemuAgainNeverAFailedStart() throws Exception {
        Path runs = dir.resolve("runs");
        Path qemu = fakeQemu("qemu-system-x86_64", runs, true);
        Path cache = dir.resolve("host-facts");
        HostFacts.probe(qemu.toString(), cache);
        String good = Files.readString(cache);
        int asked = runs(runs);

        for (String bad : List.of("", "\u0000\u00ff garbage", good.replace("sandbox true", "sandbox maybe"),
                good.replace("qsup host facts 1", "qsup host facts 2"), good + "extra\n", good.trim(),
                good.replace("\n", "\r\n"), good + " ".repeat(5000))) {
            Files.writeString(cache, bad);
            HostFacts h = HostFacts.probe(qemu.toString(), cache);
            assertThat(h.sandboxSupported()).as("after %s", bad).isTrue();
            assertThat(h.qemuProblem()).isNull();
            assertThat(runs(runs)).as("asked again after %s", bad).isEqualTo(++asked);
            assertThat(Files.readString(cache)).as("rewritten").isEqualTo(good);
        }

        // a symlink in its place is not followed: the file it names stays as it was
        Path target = Files.writeString(dir.resolve("elsewhere"), good.replace("sandbox true", "sandbox false"));
        Files.delete(cache);
        Files.createSymbolicLink(cache, target);
        assertThat(HostFacts.probe(qemu.toString(), cache).sandboxSupported()).isTrue();
        assertThat(runs(runs)).isEqualTo(++asked);
        assertThat(Files.readString(target)).isEqualTo(good.replace("sandbox true", "sandbox false"));
        assertThat(Files.isSymbolicLink(cache)).as("replaced by our own file").isFalse();

        // a FIFO in its place would block a reader: it is not read
        Files.delete(cache);
        assertThat(new ProcessBuilder("mkfifo", cache.toString()).start().waitFor()).isZero();
        assertThat(HostFacts.probe(qemu.toString(), cache).sandboxSupported()).isTrue();
        assertThat(runs(runs)).isEqualTo(++asked);
        assertThat(Files.readString(cache)).as("replaced by our own file").isEqualTo(good);

        // a folder in its place, or no folder for it at all: QEMU is asked every time, and that is all
        Files.delete(cache);
        Files.createDirectories(cache.resolve("sub"));
        assertThat(HostFacts.probe(qemu.toString(), cache).sandboxSupported()).isTrue();
        assertThat(HostFacts.probe(qemu.toString(), dir.resolve("absent/host-facts")).sandboxSupported()).isTrue();
        assertThat(runs(runs)).isEqualTo(asked + 2);
        try (Stream<Path> left = Files.list(dir)) {
            assertThat(left.map(p -> p.getFileName().toString())).as("no temporary file left")
                    .noneMatch(n -> n.endsWith(".tmp"));
        }
    }

    @Test
    void aMissingBinarySaysHowToFixIt() {
        HostFacts h = HostFacts.probe("qemu-system-nonexistent-arch");
        assertThat(h.qemuPath()).isNull();
        assertThat(h.sandboxSupported()).isFalse();
        assertThat(h.qemuProblem()).contains("'qemu-system-nonexistent-arch' not found on PATH")
                .contains("set qemu-binary in qsupd.yaml");
    }

    @Test
    void theRealFileCheckNamesWhatIsWrong() throws Exception {
        FileCheck real = FileCheck.real();
        Path f = Files.writeString(dir.resolve("disk.raw"), "");
        assertThat(real.problem(f)).isNull();
        assertThat(real.problem(dir.resolve("absent.raw"))).isEqualTo("does not exist");
        assertThat(real.problem(dir)).isEqualTo("is a directory, not a file");
    }

    @Test
    void optionValuesHaveTheirCommasDoubled() {
        assertThat(QemuOptions.escape("/images/a,b c/ü.qcow2")).isEqualTo("/images/a,,b c/ü.qcow2");
        assertThat(QemuOptions.of("socket").add("id", "x").add("path", "/a,b").toString())
                .isEqualTo("socket,id=x,path=/a,,b");
    }

    /** An executable that answers {@code -help} as QEMU does, with or without {@code -sandbox}, and counts its runs. */
    private Path fakeQemu(String name, Path runs, boolean sandbox) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, "#!/bin/sh\necho run >> '" + runs + "'\nprintf 'QEMU emulator version 7.2\\n-machine"
                + " [type=]name\\n" + (sandbox ? "-sandbox on[,obsolete=allow|deny]\\n" : "") + "'\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rwxr-xr-x"));
        return f;
    }

    private static int runs(Path runs) throws Exception {
        return Files.exists(runs) ? Files.readAllLines(runs).size() : 0;
    }
}
