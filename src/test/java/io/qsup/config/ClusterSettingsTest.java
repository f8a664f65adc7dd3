package io.qsup.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The cluster: section of qsupd.yaml, and the cluster keys of a definition. */
class ClusterSettingsTest {
    @TempDir Path dir;

    @Test
    void aFullSectionIsReadAndDefaultsFillTheRest() throws Exception {
        Path f = Files.writeString(dir.resolve("qsupd.yaml"), """
                cluster:
                  etcd: [http://10.0.0.1:2379, http://10.0.0.2:2379]
                  host: h1
                  address: 10.0.0.11
                  lease-ttl: 5s
                  capacity: {memory: 2G, cpus: 3}
                """);
        ClusterSettings c = DaemonSettings.load(f).cluster();
        assertThat(c.etcd()).containsExactly(URI.create("http://10.0.0.1:2379"), URI.create("http://10.0.0.2:2379"));
        assertThat(c.host()).isEqualTo("h1");
        assertThat(c.leaseTtl()).isEqualTo(Duration.ofSeconds(5));
        assertThat(c.capacityMemory()).isEqualTo(2L << 30);
        assertThat(c.capacityCpus()).isEqualTo(3);
        assertThat(c.fenceMargin()).isEqualTo(Duration.ofSeconds(1));
        assertThat(DaemonSettings.load(Files.writeString(dir.resolve("single.yaml"), "accel: tcg\n")).cluster()).isNull();
    }

    @Test
    void errorsNameTheLineAndTheKey() throws Exception {
        Path f = Files.writeString(dir.resolve("qsupd.yaml"), """
                cluster:
                  etcd: [ftp://x]
                  host: H_1
                  lease-ttl: 1500ms
                  fence-margin: 10s
                  capcity: {}
                """);
        assertThatThrownBy(() -> DaemonSettings.load(f)).isInstanceOf(ConfigException.class).satisfies(e -> {
            String all = String.join("\n", ((ConfigException) e).errors().stream().map(ConfigError::format).toList());
            assertThat(all).contains("qsupd.yaml:2:10: cluster.etcd[0]", "qsupd.yaml:3:9: cluster.host",
                    "qsupd.yaml:4:14: cluster.lease-ttl: must be whole seconds",
                    "qsupd.yaml:5:17: cluster.fence-margin", "qsupd.yaml:6:3: cluster.capcity: unknown key; did you"
                            + " mean 'capacity'?", "cluster.address: missing");
        });
    }

    @Test
    void aFailoverVmNeedsSharedOrReadOnlyDisks() throws Exception {
        Path img = Files.writeString(dir.resolve("d.img"), "");
        Path vm = Files.writeString(dir.resolve("web.yaml"), """
                failover: true
                placement: {hosts: [h1, h1], anti-affinity: [web]}
                disks:
                  - file: %s
                    format: raw
                  - file: %s
                    format: raw
                    shared: true
                """.formatted(img, img));
        HostFactsStub host = new HostFactsStub();
        assertThatThrownBy(() -> ConfigLoader.loadFile(vm, DaemonSettings.defaults(), host.facts()))
                .isInstanceOf(ConfigException.class).satisfies(e -> {
                    String all = String.join("\n", ((ConfigException) e).errors().stream().map(ConfigError::format)
                            .toList());
                    assertThat(all).contains("web.yaml:1:11: failover: disks[0]", "neither shared nor read-only")
                            .doesNotContain("disks[1] (")
                            .contains("web.yaml:2:25: placement.hosts[1]: 'h1' is listed twice");
                });
    }

    /** A host where every file exists and KVM is missing (definitions here use tcg through the settings). */
    private static final class HostFactsStub {
        io.qsup.qemu.HostFacts facts() {
            return io.qsup.qemu.HostFacts.fixed(true, true, io.qsup.qemu.FileCheck.allPresent());
        }
    }
}
