package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.qsup.qemu.ArgvBuilder;
import io.qsup.qemu.FileCheck;
import io.qsup.qemu.HostFacts;
import io.qsup.qmp.QmpClient;
import io.qsup.qmp.QmpEndpoint;
import io.qsup.testing.TestGuest;
import io.qsup.testing.UnixSockets;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The {@code config/} folder shipped in the repository: settings load, both demos validate, the no-download one really
 * runs. {@code io.qsup.daemon.DemoTest} runs the demo as the README does.
 */
class ShippedConfigTest {
    static final Path PROJECT = Path.of(System.getProperty("qsup.projectDir", "."));
    static final Path CONFIG = PROJECT.resolve("config");

    @Test
    void settingsKeepEverythingUnderTheCheckoutAndRunWithoutKvm() throws Exception {
        DaemonSettings s = DaemonSettings.load(CONFIG.resolve("qsupd.yaml"));
        Path run = PROJECT.resolve("run").toAbsolutePath().normalize();
        assertThat(s.vmsDir()).isEqualTo(CONFIG.resolve("vms").toAbsolutePath().normalize());
        for (Path p : List.of(s.controlSocket(), s.runDir(), s.stateDir(), s.logDir())) {
            assertThat(p).startsWithRaw(run);
        }
        assertThat(s.accel()).isNotEqualTo(Accel.KVM);
    }

    @Test
    void bothDemosValidateOnAHostWithoutKvmAndTheDemoBootsTheProjectsGuestInDemoMode() throws Exception {
        TestGuest guest = TestGuest.get(); // what scripts/setup builds
        DaemonSettings s = DaemonSettings.load(CONFIG.resolve("qsupd.yaml"));
        HostFacts noKvm = HostFacts.fixed(false, true, FileCheck.real());
        LoadResult r = ConfigLoader.loadDirectory(s.vmsDir(), s, noKvm);
        assertThat(r.errors()).isEmpty();
        assertThat(r.warnings()).isEmpty();
        assertThat(r.vms()).containsOnlyKeys("demo", "demo-bios");
        VmDefinition demo = r.vms().get("demo");
        assertThat(demo.autostart()).isTrue();
        assertThat(demo.kernel()).isEqualTo(guest.kernel().toAbsolutePath().normalize());
        assertThat(demo.initrd()).isEqualTo(guest.initrd().toAbsolutePath().normalize());
        assertThat(demo.append()).as("the test guest's command line plus the demo mode")
                .isEqualTo(guest.append() + " qsup.mode=demo");
        assertThat(r.vms().get("demo-bios").autostart()).as("only the demo starts by itself").isFalse();
    }

    /** The definition for machines without network refers to no file at all, and says so. */
    @Test
    void demoBiosNeedsNoFileAtAll() throws Exception {
        DaemonSettings s = DaemonSettings.load(CONFIG.resolve("qsupd.yaml"));
        HostFacts nothingOnDisk = HostFacts.fixed(false, true, file -> "does not exist");
        VmDefinition bios = ConfigLoader.loadFile(CONFIG.resolve("vms/demo-bios.yaml"), s, nothingOnDisk);
        assertThat(bios.kernel()).isNull();
        assertThat(bios.disks()).isEmpty();
        assertThat(bios.firmware().type()).isEqualTo(FirmwareType.BIOS);
        assertThat(Files.readString(CONFIG.resolve("vms/demo-bios.yaml"))).contains("needs no download at all");
    }

    @Test
    void referenceAndEveryExampleAreValidDefinitions() throws Exception {
        DaemonSettings s = DaemonSettings.load(CONFIG.resolve("qsupd.yaml"));
        HostFacts anyHost = HostFacts.fixed(true, true, FileCheck.allPresent());
        VmDefinition ref = ConfigLoader.loadFile(CONFIG.resolve("reference.yaml"), s, anyHost);
        assertThat(ref.disks()).hasSize(3);
        assertThat(ref.networks()).hasSize(3);
        assertThat(ref.devices().watchdog()).isNotNull();
        assertThat(Files.readString(CONFIG.resolve("reference.yaml"))).contains("[not on the demo machine");
    }

    /** Boots the no-download demo for real under TCG, as a child process with its run folder moved to a temp folder. */
    @Test
    void demoBiosRunsUnderTcgWithNothingDownloaded() throws Exception {
        DaemonSettings shipped = DaemonSettings.load(CONFIG.resolve("qsupd.yaml"));
        Path tmp = Files.createTempDirectory(Path.of("/tmp"), "qsup-demo");
        DaemonSettings s = new DaemonSettings(shipped.vmsDir(), tmp.resolve("qsupd.sock"), shipped.controlGroup(),
                tmp.resolve("run"), tmp.resolve("state"), tmp.resolve("log"), shipped.qemuBinary(), Accel.TCG,
                1, "info", null);
        HostFacts host = HostFacts.probe(s.qemuBinary());
        HostFacts tcgHost = new HostFacts(host.qemuBinary(), host.qemuPath(), host.qemuProblem(), false,
                "not used by this test", host.sandboxSupported(), host.files());
        assertThat(host.qemuProblem()).as("QEMU is installed").isNull();
        VmDefinition demo = ConfigLoader.loadFile(CONFIG.resolve("vms/demo-bios.yaml"), s, tcgHost);
        VmPaths paths = s.pathsFor("demo-bios");
        Files.createDirectories(paths.dir());
        Files.createDirectories(paths.logDir());
        List<String> argv = new ArrayList<>(ArgvBuilder.buildForeground(demo, s, tcgHost));
        assertThat(argv).containsSequence("-accel", "tcg");
        Process qemu = new ProcessBuilder(argv).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("qemu.out").toFile()).start();
        try {
            for (int i = 0; i < 400 && !UnixSockets.isListening(paths.qmpSocket()) && qemu.isAlive(); i++) {
                Thread.sleep(50);
            }
            assertThat(qemu.isAlive()).as("QEMU runs: %s", Files.exists(tmp.resolve("qemu.out"))
                    ? Files.readString(tmp.resolve("qemu.out")) : "").isTrue();
            try (QmpClient qmp = QmpClient.connect(new QmpEndpoint.Unix(paths.qmpSocket()))) {
                assertThat(qmp.queryStatus().status()).isEqualTo("running");
                assertThat(qmp.execute("query-name").path("name").asText()).isEqualTo("demo-bios");
                assertThat(qmp.execute("query-kvm").path("enabled").asBoolean()).isFalse();
                assertThat(qmp.execute("query-chardev").toString()).contains(paths.consoleSocket().toString());
                assertThat(qmp.execute("qom-list", JsonNodeFactory.instance.objectNode().put("path", "/machine/peripheral"))
                        .toString()).contains("pvpanic0");
                qmp.quit();
            }
            assertThat(qemu.waitFor(20, TimeUnit.SECONDS)).isTrue();
        } finally {
            if (qemu.isAlive()) {
                qemu.destroyForcibly();
                qemu.waitFor(10, TimeUnit.SECONDS);
            }
            deleteTree(tmp);
        }
    }

    static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
