package io.qsup.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/** The server's greeting: QEMU version, package string and the capabilities it offers. */
public record QmpGreeting(int major, int minor, int micro, String pkg, List<String> capabilities, JsonNode raw) {
    public QmpGreeting {
        capabilities = List.copyOf(capabilities);
    }

    /** The version as {@code major.minor.micro}. */
    public String version() {
        return major + "." + minor + "." + micro;
    }
}
