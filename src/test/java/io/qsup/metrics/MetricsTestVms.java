package io.qsup.metrics;

import io.qsup.supervisor.SupervisorFixture;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Small SeaBIOS VMs for the metrics tests: no kernel to boot, 32 MiB, TCG; SeaBIOS ignores ACPI power-button presses. */
final class MetricsTestVms {
    private MetricsTestVms() {}

    /** Appends {@code metrics-listen} to the fixture's settings. */
    static void listenOn(SupervisorFixture fx, String listen) throws IOException {
        Files.writeString(fx.settingsFile, Files.readString(fx.settingsFile) + "metrics-listen: " + listen + "\n");
    }

    /** Writes {@code vms/NAME.yaml}: a SeaBIOS VM with {@code extra} YAML lines. */
    static void seabios(SupervisorFixture fx, String name, String extra) throws IOException {
        Files.writeString(fx.base.resolve("vms").resolve(name + ".yaml"), """
                memory: 32M
                display: none
                accel: tcg
                %s
                """.formatted(extra));
    }

    /** A 1 MiB raw image for a disk that SeaBIOS reads its boot sector from. */
    static Path disk(SupervisorFixture fx, String name) throws IOException, InterruptedException {
        Path img = fx.base.resolve(name + ".img");
        Process p = new ProcessBuilder("qemu-img", "create", "-q", "-f", "raw", img.toString(), "1M")
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) {
            throw new IllegalStateException("qemu-img create failed (install qemu-utils with scripts/setup): " + out);
        }
        return img;
    }
}
