# One image for the four service apps and the CLI; the command picks the app.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json nest-cli.json ./
COPY apps ./apps
COPY libs ./libs
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Mount points of the secrets volumes (docker-compose.yml), owned by `node`: a new named volume takes the owner and mode
# of the folder it is mounted on, so setup (as `node`) can write the keys and the apps can read theirs.
RUN mkdir -p /keys/all /keys/order /keys/inventory /keys/payment /keys/notification /etc/nats/generated /run/orderflow/secrets \
  && chown -R node:node /keys /etc/nats/generated /run/orderflow \
  && chmod 700 /keys/all /keys/order /keys/inventory /keys/payment /keys/notification /run/orderflow/secrets
USER node
CMD ["node", "dist/apps/cli/src/main.js", "--help"]
