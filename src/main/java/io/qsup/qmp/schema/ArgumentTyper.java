package io.qsup.qmp.schema;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.qsup.qmp.QmpShellSyntax;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Gives each unquoted {@code key=value} the type the schema wants at that key, instead of qmp-shell's guess:
 * {@code node-name=123} stays the string "123", {@code size=1G} becomes 1073741824 where an integer is wanted,
 * {@code on} and {@code off} become booleans where a bool is wanted. Quoted and JSON values are left as written.
 *
 * <p>A value that does not convert to the wanted type keeps its guessed form, so that {@link ArgumentChecker} reports
 * it (or, with checks off, QEMU does); keys the schema does not know keep their guessed values too.
 */
public final class ArgumentTyper {
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    private static final Pattern DECIMAL = Pattern.compile("-?[0-9]+");
    private static final Pattern HEX = Pattern.compile("0[xX]([0-9a-fA-F]+)");
    /** A size as QEMU's own option parser takes it: a number and one binary unit, 1.5G or 64k. */
    private static final Pattern SIZE = Pattern.compile("([0-9]+(?:\\.[0-9]+)?)([bBkKmMgGtTpPeE])");
    private static final Pattern NUMBER = Pattern.compile("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");
    private static final BigInteger MIN = BigInteger.valueOf(Long.MIN_VALUE);
    private static final BigInteger MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    private final QmpSchema schema;

    public ArgumentTyper(QmpSchema schema) {
        this.schema = schema;
    }

    /** The message with its unquoted values typed by the command's schema; unchanged for an unknown command. */
    public ObjectNode type(QmpShellSyntax.Parsed parsed) {
        ObjectNode message = parsed.message().deepCopy();
        SchemaCommand command = schema.command(parsed.command());
        if (command == null || parsed.bare().isEmpty() || !(message.get("arguments") instanceof ObjectNode args)) {
            return message;
        }
        typeObject(schema.arguments(command), args, new ArrayList<>(), parsed.bare());
        return message;
    }

    private void typeObject(SchemaType.ObjectType type, ObjectNode node, List<String> path,
            Map<List<String>, String> bare) {
        for (SchemaType.Member m : type.members()) {
            typeMember(m, node, path, bare);
        }
        // the tag is one of the members just typed, so the variant its value picks is known now
        SchemaType.ObjectType variant = schema.variant(type, node);
        if (variant != null) {
            typeObject(variant, node, path, bare);
        }
    }

    private void typeMember(SchemaType.Member m, ObjectNode node, List<String> path, Map<List<String>, String> bare) {
        JsonNode value = node.get(m.name());
        if (value == null) {
            return;
        }
        path.add(m.name());
        node.set(m.name(), typeValue(m.type(), value, path, bare));
        path.remove(path.size() - 1);
    }

    private JsonNode typeValue(String typeName, JsonNode guessed, List<String> path, Map<List<String>, String> bare) {
        SchemaType type = schema.type(typeName);
        String text = bare.get(path);
        if (text != null) {
            JsonNode typed = convert(type, text);
            return typed != null ? typed : guessed;
        }
        if (guessed instanceof ObjectNode o) {
            SchemaType.ObjectType object = objectBranch(type);
            if (object != null) {
                typeObject(object, o, path, bare);
            }
        }
        return guessed;
    }

    private SchemaType.ObjectType objectBranch(SchemaType type) {
        if (type instanceof SchemaType.ObjectType o) {
            return o;
        }
        if (type instanceof SchemaType.AlternateType alt) {
            for (String t : alt.types()) {
                if (schema.type(t) instanceof SchemaType.ObjectType o) {
                    return o;
                }
            }
        }
        return null;
    }

    /** The text as the type wants it, or null when it does not convert. */
    private JsonNode convert(SchemaType type, String text) {
        return switch (type) {
            case SchemaType.Builtin b -> switch (b.jsonType()) {
                case "string" -> TextNode.valueOf(text);
                case "int" -> integer(text, true);
                case "number" -> number(text);
                case "boolean" -> bool(text, true);
                case "null" -> text.equals("null") ? JSON.nullNode() : null;
                default -> null; // 'any': the guess stands
            };
            case SchemaType.EnumType e -> TextNode.valueOf(text);
            case SchemaType.AlternateType alt -> alternate(alt, text);
            default -> null; // objects and arrays are written as JSON or dotted keys
        };
    }

    /**
     * An alternate's branches have distinct JSON types; an unquoted word picks the first that takes it, in the order
     * null, bool, int, number, then string. Where a string branch exists, only unambiguous forms pick another one:
     * {@code true}/{@code false}, plain integers.
     */
    private JsonNode alternate(SchemaType.AlternateType alt, String text) {
        List<SchemaType> branches = alt.types().stream().map(schema::type).toList();
        boolean takesString = branches.stream().anyMatch(t -> t instanceof SchemaType.EnumType
                || t instanceof SchemaType.Builtin b && b.jsonType().equals("string"));
        for (String jsonType : List.of("null", "boolean", "int", "number")) {
            if (branches.stream().anyMatch(t -> t instanceof SchemaType.Builtin b && b.jsonType().equals(jsonType))) {
                JsonNode v = switch (jsonType) {
                    case "null" -> text.equals("null") ? JSON.nullNode() : null;
                    case "boolean" -> bool(text, !takesString);
                    case "int" -> integer(text, !takesString);
                    default -> takesString ? null : number(text);
                };
                if (v != null) {
                    return v;
                }
            }
        }
        return takesString ? TextNode.valueOf(text) : null;
    }

    /** Decimal or 0x hex; with {@code units}, also a size with a binary unit (64k, 1G, 1.5T). */
    static JsonNode integer(String text, boolean units) {
        BigInteger v = null;
        if (DECIMAL.matcher(text).matches()) {
            v = new BigInteger(text);
        } else if (units && HEX.matcher(text).matches()) {
            v = new BigInteger(text.substring(2), 16);
        } else if (units) {
            Matcher m = SIZE.matcher(text);
            if (m.matches()) {
                int shift = 10 * "BKMGTPE".indexOf(m.group(2).toUpperCase(Locale.ROOT));
                BigDecimal bytes = new BigDecimal(m.group(1)).multiply(new BigDecimal(BigInteger.ONE.shiftLeft(shift)));
                try {
                    v = bytes.toBigIntegerExact();
                } catch (ArithmeticException fraction) {
                    return null; // 1.3B is no whole number of bytes
                }
            }
        }
        if (v == null || v.compareTo(MIN) < 0 || v.compareTo(MAX) > 0) {
            return null;
        }
        // the node types Jackson's parser would give the same digits, so typed and parsed messages compare equal
        if (v.bitLength() < 32) {
            return JSON.numberNode(v.intValue());
        }
        return v.bitLength() < 64 ? JSON.numberNode(v.longValue()) : JSON.numberNode(v);
    }

    private static JsonNode number(String text) {
        if (!NUMBER.matcher(text).matches()) {
            return null;
        }
        return text.matches("-?[0-9]+") ? integer(text, false) : JSON.numberNode(Double.parseDouble(text));
    }

    private static JsonNode bool(String text, boolean wordForms) {
        return switch (text) {
            case "true" -> JSON.booleanNode(true);
            case "false" -> JSON.booleanNode(false);
            case "on", "yes" -> wordForms ? JSON.booleanNode(true) : null;
            case "off", "no" -> wordForms ? JSON.booleanNode(false) : null;
            default -> null;
        };
    }
}
