package io.qsup.qemu;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The host probe: finds QEMU on PATH, reads its sandbox support, and explains what is missing. */
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
}
