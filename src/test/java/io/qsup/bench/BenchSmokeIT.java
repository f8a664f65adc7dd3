package io.qsup.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The benchmark harness's CI smoke test, {@code scripts/bench --quick} as {@code mvn -Pdeb verify} (.ci/run) runs it,
 * after the package phase has built the jar and its start-up caches that bin/qsup and bin/qsupd use: every figure of
 * BENCHMARKS.md must be measured once. It never looks at a timing; a target missed is the report's business.
 */
class BenchSmokeIT {
    @Test
    @Timeout(600)
    void everyFigureIsMeasured() throws Exception {
        Path project = Path.of(System.getProperty("qsup.projectDir", "."));
        Path out = project.resolve("target/bench-quick.md");
        Files.deleteIfExists(out);

        List<String> missing = Benchmarks.run(new String[] {"--quick", "--out", out.toString()});

        assertThat(missing).as("figures the quick run could not measure").isEmpty();
        String report = Files.readString(out);
        assertThat(report).contains("### Targets", "### qsup, bare QEMU and libvirt side by side", "### Every figure")
                .doesNotContain("not measured");
        assertThat(project.resolve("target/bench-quick.tsv")).exists();
    }
}
