package io.qsup.supervisor;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class DefinitionDiffTest {

    @Test
    void componentNamesBecomeTheYamlKeys() {
        assertThat(DefinitionDiff.keyName("memoryBytes")).isEqualTo("memory");
        assertThat(DefinitionDiff.keyName("restartMaxDelay")).isEqualTo("restart-max-delay");
        assertThat(DefinitionDiff.keyName("cpus")).isEqualTo("cpus");
        assertThat(DefinitionDiff.keyName("dependsOn")).isEqualTo("depends-on");
    }
}
