package io.qsup.qmp;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.PrettyPrinter;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.util.ByteArrayBuilder;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ContainerNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.POJONode;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.Map;

/**
 * QMP's JSON trees, read and written with jackson-core's streaming parser and generator alone.
 *
 * <p>The trees are databind's {@link JsonNode}s, built as {@code ObjectMapper.readTree} builds them (int, long or
 * big-integer nodes by size, doubles for fractions) and written as its writer writes them, but no {@code ObjectMapper}
 * is made: constructing the first one sets up databind's date formats and with them the JDK's locale and calendar
 * data, which cost a {@code qsup list} about 60 ms of its start. The parser refuses duplicate keys and accepts
 * single-quoted strings, as QEMU's does, and nests at most {@link QmpFraming#MAX_NESTING} deep; the tree is built
 * without recursion.
 */
public final class JsonTrees {
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final JsonFactory FACTORY = JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(QmpFraming.MAX_NESTING).build())
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(JsonReadFeature.ALLOW_SINGLE_QUOTES)
            .build();

    private JsonTrees() {}

    /**
     * The JSON value in {@code data[offset, offset + length)}; anything after it is ignored, as by databind.
     *
     * @throws com.fasterxml.jackson.core.JsonProcessingException on malformed JSON, a duplicate key or too deep a
     *     nesting, with the parser's own message
     * @throws IOException when the bytes hold no value at all
     */
    public static JsonNode read(byte[] data, int offset, int length) throws IOException {
        try (JsonParser p = FACTORY.createParser(data, offset, length)) {
            return read(p);
        }
    }

    /** The JSON value in {@code text}, as {@link #read(byte[], int, int)}. */
    public static JsonNode read(String text) throws IOException {
        try (JsonParser p = FACTORY.createParser(text)) {
            return read(p);
        }
    }

    private static JsonNode read(JsonParser p) throws IOException {
        ArrayDeque<ContainerNode<?>> open = new ArrayDeque<>();
        String field = null;
        for (JsonToken t = p.nextToken(); t != null; t = p.nextToken()) {
            JsonNode value;
            switch (t) {
                case FIELD_NAME -> {
                    field = p.currentName();
                    continue;
                }
                case END_OBJECT, END_ARRAY -> {
                    ContainerNode<?> done = open.pop();
                    if (open.isEmpty()) {
                        return done;
                    }
                    continue;
                }
                case START_OBJECT -> value = NODES.objectNode();
                case START_ARRAY -> value = NODES.arrayNode();
                case VALUE_STRING -> value = NODES.textNode(p.getText());
                case VALUE_NUMBER_INT -> value = switch (p.getNumberType()) {
                    case INT -> NODES.numberNode(p.getIntValue());
                    case LONG -> NODES.numberNode(p.getLongValue());
                    default -> NODES.numberNode(p.getBigIntegerValue());
                };
                case VALUE_NUMBER_FLOAT -> value = NODES.numberNode(p.getDoubleValue());
                case VALUE_TRUE -> value = NODES.booleanNode(true);
                case VALUE_FALSE -> value = NODES.booleanNode(false);
                case VALUE_NULL -> value = NODES.nullNode();
                default -> throw new IOException("unexpected JSON token " + t);
            }
            ContainerNode<?> parent = open.peek();
            if (parent instanceof ObjectNode o) {
                o.set(field, value);
            } else if (parent instanceof ArrayNode a) {
                a.add(value);
            } else if (!value.isContainerNode()) {
                return value;
            }
            if (value instanceof ContainerNode<?> c) {
                open.push(c);
            }
        }
        throw new IOException(open.isEmpty() ? "no JSON value" : "JSON input ended inside a value");
    }

    /** Compact UTF-8 JSON, as {@code ObjectMapper.writeValueAsBytes} writes it. */
    public static byte[] bytes(JsonNode node) {
        try (ByteArrayBuilder out = new ByteArrayBuilder()) {
            try (JsonGenerator g = FACTORY.createGenerator(out)) {
                write(g, node);
            }
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot encode a JSON tree", e);
        }
    }

    /** Writes {@code node} as databind's serializers of each node type write it, with the defaults of its writer. */
    private static void write(JsonGenerator g, JsonNode node) throws IOException {
        switch (node.getNodeType()) {
            case OBJECT -> {
                g.writeStartObject();
                for (Map.Entry<String, JsonNode> e : node.properties()) {
                    g.writeFieldName(e.getKey());
                    write(g, e.getValue());
                }
                g.writeEndObject();
            }
            case ARRAY -> {
                g.writeStartArray();
                for (JsonNode element : node) {
                    write(g, element);
                }
                g.writeEndArray();
            }
            case STRING -> g.writeString(node.textValue());
            case NUMBER -> {
                switch (node.numberType()) {
                    case INT -> g.writeNumber(node.intValue());
                    case LONG -> g.writeNumber(node.longValue());
                    case BIG_INTEGER -> g.writeNumber(node.bigIntegerValue());
                    case FLOAT -> g.writeNumber(node.floatValue());
                    case DOUBLE -> g.writeNumber(node.doubleValue());
                    case BIG_DECIMAL -> g.writeNumber(node.decimalValue());
                }
            }
            case BOOLEAN -> g.writeBoolean(node.booleanValue());
            case BINARY -> g.writeBinary(node.binaryValue());
            case POJO -> QmpFraming.mapper().writeValue(g, ((POJONode) node).getPojo());
            case NULL, MISSING -> g.writeNull();
        }
    }

    /** Compact JSON text. */
    public static String text(JsonNode node) {
        return write(node, null);
    }

    /** Indented JSON text, as {@code ObjectMapper}'s {@code INDENT_OUTPUT} writes it. */
    public static String pretty(JsonNode node) {
        return write(node, new DefaultPrettyPrinter());
    }

    /** JSON text laid out by {@code printer}, or compact when it is null. */
    public static String write(JsonNode node, PrettyPrinter printer) {
        StringWriter out = new StringWriter();
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            if (printer != null) {
                g.setPrettyPrinter(printer instanceof DefaultPrettyPrinter d ? d.createInstance() : printer);
            }
            write(g, node);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot encode a JSON tree", e);
        }
        return out.toString();
    }
}
