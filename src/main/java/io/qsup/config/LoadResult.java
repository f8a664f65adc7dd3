package io.qsup.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The outcome of loading a definitions folder: the valid VMs sorted by name, every error and warning, and the
 * errors per file so a reload can keep the old definition of a VM whose file broke.
 */
public record LoadResult(
        Map<String, VmDefinition> vms,
        List<ConfigError> errors,
        List<ConfigError> warnings,
        Map<Path, List<ConfigError>> errorsByFile) {

    /** Whether no file had an error. */
    public boolean ok() {
        return errors.isEmpty();
    }
}
