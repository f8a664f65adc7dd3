package io.qsup.packaging;

import static org.assertj.core.api.Assertions.assertThat;

import io.qsup.config.DaemonSettings;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The package's /etc/qsup/qsupd.yaml loads, and says exactly what qsupd does with no settings file at all. */
class PackagedSettingsTest {
    static final Path FILE = Path.of(System.getProperty("qsup.projectDir", "."), "packaging/deb/qsupd.yaml");

    @Test
    void thePackagedSettingsAreTheBuiltInDefaults() throws Exception {
        DaemonSettings loaded = DaemonSettings.load(FILE);
        DaemonSettings defaults = DaemonSettings.defaults();
        assertThat(loaded).usingRecursiveComparison().ignoringFields("sourceFile").isEqualTo(defaults);
    }
}
