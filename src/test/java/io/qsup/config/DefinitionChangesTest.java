package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.qemu.FileCheck;
import io.qsup.qemu.HostFacts;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A reload compares definitions by YAML key and knows which changes need a QEMU restart. */
class DefinitionChangesTest {
    @TempDir Path dir;

    VmDefinition load(String yaml) throws Exception {
        Path f = dir.resolve("web.yaml");
        Files.writeString(f, yaml);
        DaemonSettings s = new DaemonSettings(dir, dir.resolve("q.sock"), "qsup", dir.resolve("run"), dir.resolve("state"),
                dir.resolve("log"), "qemu-system-x86_64", Accel.TCG, 1, "info", null);
        return ConfigLoader.loadFile(f, s, HostFacts.fixed(false, true, FileCheck.real()));
    }

    @Test
    void changedKeysAreNamedAsInTheYaml() throws Exception {
        VmDefinition a = load("memory: 1G\ncpu: max\nrestart: always\nstop-timeout: 30s\n");
        VmDefinition b = load("memory: 2G\ncpu: qemu64\nrestart: always\nstop-timeout: 10s\n");
        assertThat(DefinitionChanges.changedKeys(a, b)).containsExactly("memory", "cpu", "stop-timeout");
        assertThat(DefinitionChanges.changedKeys(a, load("memory: 1024M\ncpu: max\nrestart: always\nstop-timeout: 30s\n")))
                .as("same meaning, different spelling").isEmpty();
        assertThat(DefinitionChanges.needsRestart("memory")).isTrue();
        assertThat(DefinitionChanges.needsRestart("stop-timeout")).isFalse();
    }
}
