package io.qsup.config;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;

/**
 * Parses one YAML document into {@link YamlNode}s that carry line and column, by walking Jackson's YAML tokens;
 * a document that is not valid YAML becomes a {@link Failure} with the parser's position.
 *
 * <p>Every input costs time and memory in proportion to its length: the text is capped at
 * {@link ConfigFile#MAX_BYTES} characters, nesting at {@link #MAX_DEPTH}, and aliases ({@code *name}) are refused
 * rather than expanded, so "billion laughs" documents cannot grow.
 */
final class YamlReader {
    /** Guards the recursive walk against absurd nesting; no definition needs more than a few levels. */
    static final int MAX_DEPTH = 64;
    private static final YAMLFactory FACTORY = YAMLFactory.builder()
            .loaderOptions(loaderOptions())
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxStringLength((int) ConfigFile.MAX_BYTES)
                    .maxNameLength((int) ConfigFile.MAX_BYTES)
                    .maxNestingDepth(2 * MAX_DEPTH) // the walk below stops first, with a better message
                    .build())
            .build();

    private YamlReader() {}

    /** Why a text is not a single YAML document. */
    static final class Failure extends Exception {
        final YamlNode.Location location;

        Failure(YamlNode.Location location, String message) {
            super(message);
            this.location = location;
        }
    }

    private static LoaderOptions loaderOptions() {
        LoaderOptions o = new LoaderOptions();
        o.setCodePointLimit((int) ConfigFile.MAX_BYTES);
        return o;
    }

    /** Parses {@code text}; an empty document gives null. */
    static YamlNode parse(String text) throws Failure {
        if (text.length() > ConfigFile.MAX_BYTES) {
            throw new Failure(YamlNode.Location.FILE, "the text is " + text.length() + " characters, over the "
                    + (ConfigFile.MAX_BYTES >> 20) + " MiB limit; it should be a few lines of YAML");
        }
        try (JsonParser p = FACTORY.createParser(text)) {
            JsonToken t = p.nextToken();
            if (t == null) {
                return null;
            }
            YamlNode root = read(p, t, 0);
            JsonToken extra = p.nextToken();
            if (extra != null) {
                throw new Failure(
                        location(p.currentTokenLocation()),
                        "a second YAML document starts here; put one VM or settings document per file");
            }
            return root;
        } catch (JacksonException e) {
            for (Throwable c = e; c != null; c = c.getCause()) {
                if (c instanceof MarkedYAMLException m) {
                    throw snakeFailure(m);
                }
            }
            JsonLocation loc = e.getLocation();
            YamlNode.Location at = loc == null ? YamlNode.Location.FILE : location(loc);
            if (String.valueOf(e.getOriginalMessage()).contains("AliasEvent")) {
                throw new Failure(at, "an alias (*name) used as a key; aliases are not supported: write the key out");
            }
            throw new Failure(at, "invalid YAML: " + cleanMessage(e));
        } catch (IOException e) {
            throw new Failure(YamlNode.Location.FILE, "invalid YAML: " + e.getMessage());
        } catch (MarkedYAMLException e) {
            throw snakeFailure(e);
        } catch (RuntimeException e) {
            // SnakeYAML reports some malformed input (bad anchors, odd tags) with unchecked exceptions.
            throw new Failure(YamlNode.Location.FILE, "invalid YAML: " + firstLine(String.valueOf(e.getMessage())));
        }
    }

    private static YamlNode read(JsonParser p, JsonToken t, int depth) throws IOException, Failure {
        YamlNode.Location here = location(p.currentTokenLocation());
        if (depth > MAX_DEPTH) {
            throw new Failure(here, "nesting deeper than " + MAX_DEPTH + " levels; a definition needs a few levels"
                    + " at most: check the brackets and the indentation");
        }
        refuseAlias(p, here);
        switch (t) {
            case START_OBJECT -> {
                List<YamlNode.Entry> entries = new ArrayList<>();
                JsonToken k;
                while ((k = p.nextToken()) == JsonToken.FIELD_NAME) {
                    String key = p.currentName();
                    YamlNode.Location keyLoc = location(p.currentTokenLocation());
                    refuseAlias(p, keyLoc);
                    YamlNode value = read(p, p.nextToken(), depth + 1);
                    entries.add(new YamlNode.Entry(key == null ? "" : key, keyLoc, value));
                }
                expect(k, JsonToken.END_OBJECT, p);
                return new YamlNode.Mapping(here, List.copyOf(entries));
            }
            case START_ARRAY -> {
                List<YamlNode> items = new ArrayList<>();
                JsonToken i;
                while ((i = p.nextToken()) != JsonToken.END_ARRAY) {
                    if (i == null) {
                        throw new Failure(here, "invalid YAML: unterminated list");
                    }
                    items.add(read(p, i, depth + 1));
                }
                return new YamlNode.Sequence(here, List.copyOf(items));
            }
            case VALUE_STRING -> {
                return new YamlNode.Scalar(here, YamlNode.Scalar.Kind.STRING, p.getText());
            }
            case VALUE_NUMBER_INT -> {
                return new YamlNode.Scalar(here, YamlNode.Scalar.Kind.INTEGER, p.getText());
            }
            case VALUE_NUMBER_FLOAT -> {
                return new YamlNode.Scalar(here, YamlNode.Scalar.Kind.FLOAT, p.getText());
            }
            case VALUE_TRUE, VALUE_FALSE -> {
                return new YamlNode.Scalar(here, YamlNode.Scalar.Kind.BOOLEAN, t == JsonToken.VALUE_TRUE ? "true" : "false");
            }
            case VALUE_NULL -> {
                return new YamlNode.Scalar(here, YamlNode.Scalar.Kind.NULL, "");
            }
            default -> {
                // Binary and embedded objects only arise from tags such as !!binary.
                return new YamlNode.Scalar(here, YamlNode.Scalar.Kind.STRING, String.valueOf(p.getText()));
            }
        }
    }

    /**
     * Jackson hands an alias over as a string holding the anchor's name, which would silently become the value;
     * expanding it instead is how a few hundred bytes grow into gigabytes.
     */
    private static void refuseAlias(JsonParser p, YamlNode.Location here) throws IOException, Failure {
        if (p instanceof YAMLParser y && y.isCurrentAlias()) {
            throw new Failure(here, "'*" + Values.printable(String.valueOf(p.getText())) + "' is an alias; aliases"
                    + " (and '<<' merges) are not supported: write the value out in full");
        }
    }

    /** SnakeYAML says where it noticed the problem and what it was parsing; both help to find a bad indent. */
    private static Failure snakeFailure(MarkedYAMLException m) {
        Mark mark = m.getProblemMark() != null ? m.getProblemMark() : m.getContextMark();
        YamlNode.Location at = mark == null ? YamlNode.Location.FILE : new YamlNode.Location(mark.getLine() + 1, mark.getColumn() + 1);
        String problem = m.getProblem() == null ? "" : m.getProblem().trim();
        StringBuilder msg = new StringBuilder("invalid YAML: ");
        if (problem.contains("(TAB)")) {
            msg.append("a tab character; YAML indents with spaces only, replace the tab with spaces");
        } else {
            msg.append(Values.printable(problem));
            if (m.getContext() != null) {
                msg.append(" (").append(Values.printable(m.getContext().trim()));
                if (m.getContextMark() != null && mark != m.getContextMark()) {
                    msg.append(" started on line ").append(m.getContextMark().getLine() + 1);
                }
                msg.append(")");
            }
            msg.append("; check the indentation and the ':' after each key");
        }
        return new Failure(at, msg.toString());
    }

    private static void expect(JsonToken got, JsonToken want, JsonParser p) throws Failure {
        if (got != want) {
            throw new Failure(location(p.currentTokenLocation()), "invalid YAML: unexpected " + got);
        }
    }

    private static YamlNode.Location location(JsonLocation loc) {
        if (loc == null || loc.getLineNr() <= 0) {
            return YamlNode.Location.FILE;
        }
        return new YamlNode.Location(loc.getLineNr(), Math.max(1, loc.getColumnNr()));
    }

    /** Jackson appends its own position and a source excerpt; the error line names the position already. */
    private static String cleanMessage(JacksonException e) {
        String m = e.getOriginalMessage();
        if (m == null) {
            m = String.valueOf(e.getMessage());
        }
        return firstLine(m).trim();
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}
