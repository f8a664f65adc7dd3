package io.qsup.qemu;

import java.util.ArrayList;
import java.util.List;

/**
 * Builds QEMU's {@code key=value,key=value} option strings. Every value has its commas doubled, which is how QEMU's
 * option parser reads a literal comma, so no value can end an option early or add a key of its own.
 */
public final class QemuOptions {
    private final List<String> parts = new ArrayList<>();

    private QemuOptions(String first) {
        if (first != null) {
            parts.add(escape(first));
        }
    }

    /** Escapes a value for use inside an option string: {@code ,} becomes {@code ,,}. */
    public static String escape(String value) {
        return value.replace(",", ",,");
    }

    /** An option string that starts with a bare value, such as the backend of {@code -chardev socket,...}. */
    public static QemuOptions of(String firstValue) {
        return new QemuOptions(firstValue);
    }

    /** An option string of {@code key=value} pairs only. */
    public static QemuOptions pairs() {
        return new QemuOptions(null);
    }

    /** Adds {@code key=value}; the key is a fixed QEMU property name, the value is escaped. */
    public QemuOptions add(String key, String value) {
        parts.add(key + "=" + escape(value));
        return this;
    }

    /** Adds {@code key=value} for a number. */
    public QemuOptions add(String key, long value) {
        parts.add(key + "=" + value);
        return this;
    }

    @Override
    public String toString() {
        return String.join(",", parts);
    }
}
