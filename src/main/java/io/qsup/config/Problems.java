package io.qsup.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Collects the errors and warnings found in one file, so that one pass reports all of them. */
final class Problems {
    private final Path file;
    private final List<ConfigError> errors = new ArrayList<>();
    private final List<ConfigError> warnings = new ArrayList<>();

    Problems(Path file) {
        this.file = file;
    }

    Path file() {
        return file;
    }

    void error(YamlNode.Location at, String keyPath, String message) {
        errors.add(new ConfigError(file, at.line(), at.column(), keyPath, message));
    }

    void warning(YamlNode.Location at, String keyPath, String message) {
        warnings.add(new ConfigError(file, at.line(), at.column(), keyPath, message));
    }

    List<ConfigError> errors() {
        return List.copyOf(errors);
    }

    List<ConfigError> warnings() {
        return List.copyOf(warnings);
    }

    boolean hasErrors() {
        return !errors.isEmpty();
    }
}
