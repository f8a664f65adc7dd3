package io.qsup.qmp.schema;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A QEMU's own description of its QMP interface, read from {@code query-qmp-schema}: its commands, events and the
 * types they use, every type reference checked to resolve. Knows nothing of VMs or of where the schema came from.
 *
 * <p>Immutable, so safe to share between threads.
 */
public final class QmpSchema {
    /**
     * Commands whose marshalling is written by hand in QEMU ({@code 'gen': false}), so that they take arguments beyond
     * the members the introspection lists: {@code device_add} takes every property of the device it adds.
     */
    private static final Set<String> OPEN_ARGUMENTS = Set.of("device_add");

    private final ArrayNode raw;
    private final Map<String, SchemaType> types;
    private final Map<String, SchemaCommand> commands;
    private final Map<String, SchemaEvent> events;

    private QmpSchema(ArrayNode raw, Map<String, SchemaType> types, Map<String, SchemaCommand> commands,
            Map<String, SchemaEvent> events) {
        this.raw = raw;
        this.types = types;
        this.commands = commands;
        this.events = events;
    }

    /**
     * Reads the {@code return} value of {@code query-qmp-schema}.
     *
     * @throws SchemaException when it is not a list of SchemaInfo objects, or a type it names is not in it
     */
    public static QmpSchema parse(JsonNode infos) throws SchemaException {
        if (!(infos instanceof ArrayNode array)) {
            throw new SchemaException("query-qmp-schema returned " + kind(infos) + ", not a list of SchemaInfo");
        }
        Map<String, SchemaType> types = new HashMap<>();
        Map<String, SchemaCommand> commands = new TreeMap<>();
        Map<String, SchemaEvent> events = new TreeMap<>();
        List<String[]> references = new ArrayList<>();
        int index = 0;
        for (JsonNode e : array) {
            String where = "entry " + index++;
            String name = text(e, "name", where);
            String meta = text(e, "meta-type", where);
            where = meta + " '" + name + "'";
            switch (meta) {
                case "builtin" -> types.put(name, new SchemaType.Builtin(name, text(e, "json-type", where)));
                case "enum" -> {
                    List<String> values = new ArrayList<>();
                    for (JsonNode v : array(e, "values", where)) {
                        values.add(v.asText());
                    }
                    types.put(name, new SchemaType.EnumType(name, values));
                }
                case "array" -> {
                    String element = text(e, "element-type", where);
                    references.add(new String[] {where, element});
                    types.put(name, new SchemaType.ArrayType(name, element));
                }
                case "object" -> {
                    List<SchemaType.Member> members = new ArrayList<>();
                    for (JsonNode m : array(e, "members", where)) {
                        String memberName = text(m, "name", where);
                        String type = text(m, "type", where + " member '" + memberName + "'");
                        references.add(new String[] {where + " member '" + memberName + "'", type});
                        members.add(new SchemaType.Member(memberName, type, m.has("default"), strings(m.get("features"))));
                    }
                    String tag = e.hasNonNull("tag") ? e.get("tag").asText() : null;
                    Map<String, String> variants = new LinkedHashMap<>();
                    if (e.has("variants")) {
                        for (JsonNode v : array(e, "variants", where)) {
                            String type = text(v, "type", where + " variant");
                            references.add(new String[] {where + " variant '" + v.path("case").asText() + "'", type});
                            variants.put(text(v, "case", where + " variant"), type);
                        }
                    }
                    if (tag != null && members.stream().noneMatch(m -> m.name().equals(tag))) {
                        throw new SchemaException(where + " is tagged by '" + tag + "', which is not one of its members");
                    }
                    types.put(name, new SchemaType.ObjectType(name, members, tag, variants));
                }
                case "alternate" -> {
                    List<String> alts = new ArrayList<>();
                    for (JsonNode m : array(e, "members", where)) {
                        String type = text(m, "type", where);
                        references.add(new String[] {where, type});
                        alts.add(type);
                    }
                    types.put(name, new SchemaType.AlternateType(name, alts));
                }
                case "command" -> {
                    String arg = text(e, "arg-type", where);
                    String ret = text(e, "ret-type", where);
                    references.add(new String[] {where + " arguments", arg});
                    references.add(new String[] {where + " return", ret});
                    commands.put(name, new SchemaCommand(name, arg, ret, e.path("allow-oob").asBoolean(false),
                            strings(e.get("features"))));
                }
                case "event" -> {
                    String arg = text(e, "arg-type", where);
                    references.add(new String[] {where + " data", arg});
                    events.put(name, new SchemaEvent(name, arg, strings(e.get("features"))));
                }
                default -> {
                    // a meta-type newer than this client: its entries are not referenced by the ones it knows
                }
            }
        }
        for (String[] ref : references) {
            if (!types.containsKey(ref[1])) {
                throw new SchemaException(ref[0] + " names type '" + ref[1] + "', which the schema does not define");
            }
        }
        for (SchemaCommand c : commands.values()) {
            if (!(types.get(c.argType()) instanceof SchemaType.ObjectType)) {
                throw new SchemaException("command '" + c.name() + "' takes arguments of type '" + c.argType()
                        + "', which is not an object type");
            }
        }
        return new QmpSchema(array.deepCopy(), Map.copyOf(types), Collections.unmodifiableMap(commands),
                Collections.unmodifiableMap(events));
    }

    private static String text(JsonNode e, String key, String where) throws SchemaException {
        JsonNode n = e.get(key);
        if (n == null || !n.isTextual()) {
            throw new SchemaException(where + " has no '" + key + "' string: " + e);
        }
        return n.asText();
    }

    private static ArrayNode array(JsonNode e, String key, String where) throws SchemaException {
        JsonNode n = e.get(key);
        if (!(n instanceof ArrayNode a)) {
            throw new SchemaException(where + " has no '" + key + "' list: " + e);
        }
        return a;
    }

    private static List<String> strings(JsonNode n) {
        List<String> out = new ArrayList<>();
        if (n != null) {
            n.forEach(v -> out.add(v.asText()));
        }
        return out;
    }

    private static String kind(JsonNode n) {
        return n == null ? "nothing" : n.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
    }

    /** The introspection data as QEMU sent it, for caching. */
    public ArrayNode raw() {
        return raw.deepCopy();
    }

    /** Every command, by name, sorted. */
    public Map<String, SchemaCommand> commands() {
        return commands;
    }

    /** Every event, by name, sorted. */
    public Map<String, SchemaEvent> events() {
        return events;
    }

    public SchemaCommand command(String name) {
        return commands.get(name);
    }

    public SchemaEvent event(String name) {
        return events.get(name);
    }

    /** The type of that name; every name a command, event or type of this schema uses resolves. */
    public SchemaType type(String name) {
        SchemaType t = types.get(name);
        if (t == null) {
            throw new IllegalArgumentException("no type '" + name + "' in this schema");
        }
        return t;
    }

    /** The object type of a command's arguments. */
    public SchemaType.ObjectType arguments(SchemaCommand command) {
        return (SchemaType.ObjectType) types.get(command.argType());
    }

    /** Whether the command takes arguments beyond those listed, so an unknown one must not be refused. */
    public boolean takesMoreArguments(SchemaCommand command) {
        return OPEN_ARGUMENTS.contains(command.name());
    }

    /**
     * The members an object accepts given its value so far: its own, and those of the variant its tag's value picks
     * (and so on, for a variant that is itself a union). The tag's value is read from {@code value}; without a valid
     * one, only the object's own members.
     */
    public List<SchemaType.Member> members(SchemaType.ObjectType type, JsonNode value) {
        List<SchemaType.Member> out = new ArrayList<>(type.members());
        SchemaType.ObjectType variant = variant(type, value);
        if (variant != null) {
            out.addAll(members(variant, value));
        }
        return out;
    }

    /** The variant the tag's value in {@code value} picks, or null when there is no tag or no valid value for it. */
    public SchemaType.ObjectType variant(SchemaType.ObjectType type, JsonNode value) {
        if (type.tag() == null || !(value instanceof ObjectNode o) || !o.path(type.tag()).isTextual()) {
            return null;
        }
        String variant = type.variants().get(o.get(type.tag()).asText());
        return variant == null ? null : (SchemaType.ObjectType) types.get(variant);
    }

    /**
     * A type named by its shape, since QEMU masks the names: {@code str}, {@code int}, {@code enum}, {@code object},
     * {@code array of str}, {@code object or str}.
     */
    public String display(String typeName) {
        return display(type(typeName), 0);
    }

    private String display(SchemaType t, int depth) {
        return switch (t) {
            case SchemaType.Builtin b -> b.name();
            case SchemaType.EnumType e -> "enum";
            case SchemaType.ObjectType o -> "object";
            case SchemaType.ArrayType a -> depth > 3 ? "array" : "array of " + display(type(a.elementType()), depth + 1);
            case SchemaType.AlternateType alt -> {
                List<String> parts = new ArrayList<>();
                for (String m : alt.types()) {
                    parts.add(display(type(m), depth + 1));
                }
                yield String.join(" or ", parts);
            }
        };
    }
}
