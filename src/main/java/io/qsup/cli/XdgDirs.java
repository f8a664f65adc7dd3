package io.qsup.cli;

import java.nio.file.Path;
import java.util.Map;

/** Where the CLI keeps its own files, by the XDG base directory rules: a cache and state (the shell's history). */
final class XdgDirs {
    private XdgDirs() {}

    /** {@code $XDG_CACHE_HOME/qsup}, else {@code ~/.cache/qsup}; null when neither can be known. */
    static Path cache(Map<String, String> env) {
        return dir(env, "XDG_CACHE_HOME", ".cache");
    }

    /** {@code $XDG_STATE_HOME/qsup}, else {@code ~/.local/state/qsup}; null when neither can be known. */
    static Path state(Map<String, String> env) {
        return dir(env, "XDG_STATE_HOME", ".local/state");
    }

    private static Path dir(Map<String, String> env, String variable, String underHome) {
        String base = env.get(variable);
        // the specification says a relative path is invalid and to be ignored
        if (base != null && !base.isEmpty() && Path.of(base).isAbsolute()) {
            return Path.of(base, "qsup");
        }
        String home = env.get("HOME");
        if (home == null || home.isEmpty()) {
            home = System.getProperty("user.home");
        }
        return home == null || home.isEmpty() ? null : Path.of(home, underHome, "qsup");
    }
}
