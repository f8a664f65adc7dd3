package io.qsup.config;

import java.util.List;

/** The root of configuration failures: one or more problems in a settings or definition file. */
public class ConfigException extends Exception {
    private final transient List<ConfigError> errors;

    public ConfigException(List<ConfigError> errors) {
        super(summary(errors));
        this.errors = List.copyOf(errors);
    }

    /** Every problem found, in file order. */
    public List<ConfigError> errors() {
        return errors;
    }

    private static String summary(List<ConfigError> errors) {
        if (errors.isEmpty()) {
            return "invalid configuration";
        }
        StringBuilder sb = new StringBuilder(errors.get(0).format());
        for (int i = 1; i < errors.size(); i++) {
            sb.append('\n').append(errors.get(i).format());
        }
        return sb.toString();
    }
}
