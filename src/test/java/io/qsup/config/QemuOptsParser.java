package io.qsup.config;

import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads an option string back the way QEMU's option parser does: {@code ,,} is a literal comma, a single comma
 * ends a part, a part is {@code key=value}, and the first part may be a bare value (key "").
 */
final class QemuOptsParser {
    private QemuOptsParser() {}

    static List<Map.Entry<String, String>> parse(String s, boolean impliedFirst) {
        List<String> parts = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == ',') {
                if (i + 1 < s.length() && s.charAt(i + 1) == ',') {
                    cur.append(',');
                    i++;
                } else {
                    parts.add(cur.toString());
                    cur.setLength(0);
                }
            } else {
                cur.append(c);
            }
        }
        parts.add(cur.toString());
        List<Map.Entry<String, String>> out = new ArrayList<>();
        for (int i = 0; i < parts.size(); i++) {
            String p = parts.get(i);
            int eq = p.indexOf('=');
            if (i == 0 && impliedFirst && eq < 0) {
                out.add(new AbstractMap.SimpleEntry<>("", p));
            } else if (eq < 0) {
                out.add(new AbstractMap.SimpleEntry<>(p, "on")); // QEMU reads a bare key as key=on
            } else {
                out.add(new AbstractMap.SimpleEntry<>(p.substring(0, eq), p.substring(eq + 1)));
            }
        }
        return out;
    }
}
