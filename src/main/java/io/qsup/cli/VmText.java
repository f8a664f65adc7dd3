package io.qsup.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Turns the daemon's VM objects into the words and cells {@code qsup} prints. */
final class VmText {
    private VmText() {}

    static String state(JsonNode vm) {
        StringBuilder s = new StringBuilder(vm.path("state").asText("?"));
        return s.toString();
    }

    /** Flags shown after the state: unresponsive, restart-pending. */
    static String flags(JsonNode vm) {
        List<String> flags = new ArrayList<>();
        if (vm.path("unresponsive").asBoolean(false)) {
            flags.add("unresponsive");
        }
        if (vm.path("restart-pending").asBoolean(false)) {
            flags.add("restart-pending");
        }
        if (!vm.path("intent-persisted").asBoolean(true)) {
            flags.add("unpersisted");
        }
        if (vm.path("ready").asBoolean(false)) {
            flags.add("ready");
        }
        if (vm.hasNonNull("held-back")) {
            flags.add("held-back");
        }
        if (vm.path("guest-unresponsive").asBoolean(false)) {
            flags.add("guest-unresponsive");
        } else if (vm.path("agent").asText("").equals("unresponsive")) {
            flags.add("agent-unresponsive");
        }
        return String.join(",", flags);
    }

    /** The guest's first address as its agent reports it, or "-". */
    static String ip(JsonNode vm) {
        JsonNode ip = vm.get("ip");
        return ip == null || ip.isNull() ? "-" : ip.asText();
    }

    /** One line per interface: name, MAC, addresses. */
    static String interfaces(JsonNode list) {
        List<String> lines = new ArrayList<>();
        for (JsonNode i : list) {
            StringBuilder b = new StringBuilder(i.path("name").asText());
            if (i.hasNonNull("mac")) {
                b.append(' ').append(i.get("mac").asText());
            }
            for (JsonNode a : i.path("addresses")) {
                b.append(' ').append(a.asText());
            }
            lines.add(b.toString());
        }
        return lines.isEmpty() ? "-" : String.join("; ", lines);
    }

    static String pid(JsonNode vm) {
        JsonNode pid = vm.get("pid");
        return pid == null || pid.isNull() ? "-" : pid.asText();
    }

    static String uptime(JsonNode vm) {
        JsonNode up = vm.get("uptime-seconds");
        return up == null || up.isNull() ? "-" : duration(Duration.ofSeconds(up.asLong()));
    }

    static String duration(Duration d) {
        long s = d.toSeconds();
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return (s / 60) + "m" + (s % 60 == 0 ? "" : (s % 60) + "s");
        }
        if (s < 86400) {
            return (s / 3600) + "h" + ((s % 3600) / 60 == 0 ? "" : ((s % 3600) / 60) + "m");
        }
        return (s / 86400) + "d" + ((s % 86400) / 3600 == 0 ? "" : ((s % 86400) / 3600) + "h");
    }

    /** The last exit cause's label only (e.g. {@code crashed}); {@code qsup status} shows the whole text. */
    static String cause(JsonNode vm) {
        return orDash(vm.path("last-exit-cause"), "cause");
    }

    static String orDash(JsonNode vm, String field) {
        JsonNode v = vm.get(field);
        return v == null || v.isNull() || v.asText().isEmpty() ? "-" : v.asText();
    }
}
