package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qsup.qemu.FileCheck;
import io.qsup.qemu.HostFacts;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading definitions: names, defaults, relative paths, folders with broken files, derived MACs, socket limits. */
class ConfigLoaderTest {
    @TempDir Path dir;

    static final HostFacts HOST = HostFacts.fixed(false, true, FileCheck.real());

    DaemonSettings settings(String runDir) {
        return new DaemonSettings(dir, dir.resolve("q.sock"), "qsup", Path.of(runDir), dir.resolve("state"),
                dir.resolve("log"), "qemu-system-x86_64", Accel.AUTO, 2, "info", null);
    }

    DaemonSettings settings() {
        return settings("/run/qsup");
    }

    Path write(String name, String yaml) throws Exception {
        Path f = dir.resolve(name);
        Files.createDirectories(f.getParent());
        Files.writeString(f, yaml);
        return f;
    }

    @Test
    void nameDefaultsToTheFileNameAndTheNameKeyOverridesIt() throws Exception {
        assertThat(ConfigLoader.loadFile(write("web-1.yaml", "memory: 1G\n"), settings(), HOST).name()).isEqualTo("web-1");
        assertThat(ConfigLoader.loadFile(write("x.yaml", "name: db\n"), settings(), HOST).name()).isEqualTo("db");
    }

    @Test
    void everyDefaultIsFilledIn() throws Exception {
        VmDefinition vm = ConfigLoader.loadFile(write("d.yaml", "description: defaults\n"), settings(), HOST);
        assertThat(vm.memoryBytes()).isEqualTo(512L << 20);
        assertThat(vm.cpus()).isEqualTo(CpuTopology.of(1));
        assertThat(vm.machine()).isEqualTo(MachineType.Q35);
        assertThat(vm.accel()).as("inherited from the settings").isEqualTo(Accel.AUTO);
        assertThat(vm.firmware()).isEqualTo(Firmware.BIOS);
        assertThat(vm.display()).isEqualTo(Display.NONE);
        assertThat(vm.devices()).isEqualTo(new Devices(true, null, false));
        assertThat(vm.autostart()).isTrue();
        assertThat(vm.restart()).isEqualTo(RestartPolicy.ON_FAILURE);
        assertThat(vm.restartDelay()).isEqualTo(Duration.ofSeconds(1));
        assertThat(vm.restartMaxDelay()).isEqualTo(Duration.ofMinutes(1));
        assertThat(vm.restartSteps()).isEqualTo(5);
        assertThat(vm.startLimitBurst()).isEqualTo(5);
        assertThat(vm.startLimitInterval()).isEqualTo(Duration.ofMinutes(5));
        assertThat(vm.stopTimeout()).isEqualTo(Duration.ofSeconds(90));
        assertThat(vm.hangAction()).isEqualTo(HangAction.REPORT);
        assertThat(vm.applyChanges()).isEqualTo(ApplyChanges.MANUAL);
        assertThat(vm.dependsOn()).isEmpty();
        assertThat(vm.extraArgs()).isEmpty();
    }

    @Test
    void relativeDiskPathsResolveAgainstTheDefinitionsFolder() throws Exception {
        write("images/root.qcow2", "");
        Path f = write("vm.yaml", "disks:\n  - file: images/root.qcow2\n");
        VmDefinition vm = ConfigLoader.loadFile(f, settings(), HOST);
        assertThat(vm.disks().get(0).file()).isEqualTo(dir.resolve("images/root.qcow2").toAbsolutePath());
    }

    @Test
    void yamlOneOneWordsForBooleansAreHandled() throws Exception {
        VmDefinition vm = ConfigLoader.loadFile(write("b.yaml", "restart: no\nautostart: false\n"), settings(), HOST);
        assertThat(vm.restart()).isEqualTo(RestartPolicy.NO);
        assertThat(vm.autostart()).isFalse();
    }

    @Test
    void aFolderLoadsTheValidVmsSortedAndReportsBrokenFilesByFile() throws Exception {
        write("zeta.yaml", "memory: 1G\n");
        write("alpha.yaml", "memory: 1G\n");
        Path broken = write("broken.yaml", "memory: [\n");
        write("README.txt", "not a definition");
        write(".alpha.yaml.swp", "junk");
        LoadResult r = ConfigLoader.loadDirectory(dir, settings(), HOST);
        assertThat(r.vms().keySet()).containsExactly("alpha", "zeta");
        assertThat(r.errorsByFile()).containsOnlyKeys(broken);
        assertThat(r.errors()).hasSize(1);
        assertThat(r.errors().get(0).format()).startsWith(broken + ":2:1: invalid YAML");
        assertThat(r.ok()).isFalse();
    }

    @Test
    void derivedMacsAreStableLocallyAdministeredAndDistinct() throws Exception {
        Path f = write("net.yaml", "networks:\n  - type: user\n  - type: user\n");
        VmDefinition a = ConfigLoader.loadFile(f, settings(), HOST);
        VmDefinition b = ConfigLoader.loadFile(f, settings(), HOST);
        VmDefinition other = ConfigLoader.loadFile(write("other.yaml", "networks:\n  - type: user\n"), settings(), HOST);
        String mac0 = a.networks().get(0).mac();
        assertThat(mac0).matches("52:54:00(:[0-9a-f]{2}){3}");
        assertThat(a.networks().get(0).macDerived()).isTrue();
        assertThat(b.networks().get(0).mac()).isEqualTo(mac0);
        assertThat(a.networks().get(1).mac()).isNotEqualTo(mac0);
        assertThat(other.networks().get(0).mac()).isNotEqualTo(mac0);
    }

    @Test
    void socketPathsUpTo107BytesAreAcceptedAndLongerOnesRejectedWithTheirLength() throws Exception {
        // run-dir + "/vms/" + name + "/console.sock" = 29 + 5 + 60 + 13 = 107 bytes.
        String runDir = "/r/qsup-" + "d".repeat(21);
        String fits = "n".repeat(60);
        assertThat(ConfigLoader.loadFile(write("a.yaml", "name: " + fits + "\n"), settings(runDir), HOST).name()).isEqualTo(fits);
        String tooLong = fits + "x";
        assertThatThrownBy(() -> ConfigLoader.loadFile(write("b.yaml", "name: " + tooLong + "\n"), settings(runDir), HOST))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("console socket path " + runDir + "/vms/" + tooLong + "/console.sock is 108 bytes long");
    }

    @Test
    void kvmIsRequiredOnlyWhenAskedFor() throws Exception {
        Path f = write("k.yaml", "accel: kvm\n");
        assertThatThrownBy(() -> ConfigLoader.loadFile(f, settings(), HOST))
                .hasMessageContaining("set 'accel: tcg' or 'accel: auto'");
        HostFacts withKvm = HostFacts.fixed(true, true, FileCheck.real());
        assertThat(ConfigLoader.loadFile(f, settings(), withKvm).accel()).isEqualTo(Accel.KVM);
    }

    @Test
    void aFileThatIsNotUtf8IsReported() throws Exception {
        Path f = dir.resolve("latin1.yaml");
        Files.write(f, new byte[] {'d', 'e', 's', 'c', 'r', 'i', 'p', 't', 'i', 'o', 'n', ':', ' ', (byte) 0xe9, '\n'});
        assertThatThrownBy(() -> ConfigLoader.loadFile(f, settings(), HOST)).hasMessageContaining("not UTF-8");
    }
}
