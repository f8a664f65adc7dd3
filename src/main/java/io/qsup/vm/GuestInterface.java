package io.qsup.vm;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * One network interface as the guest agent reports it ({@code guest-network-get-interfaces}).
 *
 * @param name      the guest's name for it, e.g. {@code eth0}
 * @param mac       its hardware address, or null
 * @param addresses its addresses as {@code ADDRESS/PREFIX}, IPv4 and IPv6, in the agent's order
 */
public record GuestInterface(String name, String mac, List<String> addresses) {
    public GuestInterface {
        addresses = List.copyOf(addresses);
    }

    /** Parses the agent's reply; entries it cannot read are skipped. */
    public static List<GuestInterface> fromAgent(JsonNode reply) {
        List<GuestInterface> out = new ArrayList<>();
        if (reply == null || !reply.isArray()) {
            return out;
        }
        for (JsonNode i : reply) {
            String name = i.path("name").asText("");
            if (name.isEmpty()) {
                continue;
            }
            List<String> addrs = new ArrayList<>();
            for (JsonNode a : i.path("ip-addresses")) {
                String ip = a.path("ip-address").asText("");
                if (!ip.isEmpty()) {
                    addrs.add(a.has("prefix") ? ip + "/" + a.path("prefix").asInt() : ip);
                }
            }
            String mac = i.path("hardware-address").asText(null);
            out.add(new GuestInterface(name, mac, addrs));
        }
        return out;
    }

    /**
     * The address an admin looks for first: the first IPv4 address off loopback, else the first IPv6 address that is
     * neither loopback nor link-local; without its prefix. Null when there is none.
     */
    public static String primaryAddress(List<GuestInterface> interfaces) {
        String v6 = null;
        for (GuestInterface i : interfaces) {
            for (String a : i.addresses()) {
                String ip = a.contains("/") ? a.substring(0, a.indexOf('/')) : a;
                if (ip.contains(":")) {
                    String low = ip.toLowerCase(java.util.Locale.ROOT);
                    if (v6 == null && !low.equals("::1") && !low.startsWith("fe80:")) {
                        v6 = ip;
                    }
                } else if (!ip.startsWith("127.")) {
                    return ip;
                }
            }
        }
        return v6;
    }
}
